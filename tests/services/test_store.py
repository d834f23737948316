"""The store on both backends, a real SQLite file and a real PostgreSQL database: schema and
migrations, submissions, reviews, versions and checkpoints, jobs, isolation."""
from __future__ import annotations

import asyncio
import math
import re
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import (
    DailyLimitReached,
    DinoBotError,
    DuplicateName,
    KnownDinosaur,
    NotFound,
    SchemaTooNew,
    StorageError,
)
from bot.services.store import (
    DAY_SECONDS,
    DatabaseTarget,
    GuildSettings,
    JobState,
    LeaseLost,
    LiveReply,
    Status,
    Store,
    pg_migrations,
)
from bot.services.store import migrations as sqlite_migrations
from bot.services.store.db import IntegrityViolation
from bot.services.store.jobs import MAX_ATTEMPTS
from bot.services.store.migrations import MIGRATIONS, SCHEMA_VERSION, split_statements
from bot.services.store.postgres import bind, to_numbered
from bot.services.store.target import as_target
from model.errors import InvalidName
from tests.support.db_checks import latest_promoted, untrained
from tests.support.name_factory import name_for
from tests.support.stores import RawDB

G1, G2 = 111_111_111_111_111_111, 222_222_222_222_222_222  # snowflake-sized guild ids
ALICE, BOB, ADMIN = 1001, 1002, 9001
T0 = 1_700_000_000.0


class Clock:
    """A clock the test moves by hand, so the rolling 24 h window needs no sleeping."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(db_target: DatabaseTarget, clock: Clock):
    async with await Store.open(
        db_target, daily_limit=3, known_names=frozenset({"Tyrannosaurus", "velociraptor"}),
        clock=clock,
    ) as s:
        yield s


def sql(path: Path, query: str, params: tuple = ()) -> list[tuple]:
    """Read an SQLite file with plain sqlite3 (for the SQLite-only tests)."""
    con = sqlite3.connect(path)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def migrations_of(raw: RawDB):
    return pg_migrations if raw.is_postgres else sqlite_migrations


# ---------------------------------------------------------------------- schema and migrations


async def test_open_creates_the_schema(store: Store, raw: RawDB) -> None:
    assert await raw.schema_version() == SCHEMA_VERSION == pg_migrations.SCHEMA_VERSION
    assert {"submissions", "model_versions", "model_checkpoints", "guild_settings", "audit_log",
            "training_jobs"} <= await raw.tables()
    assert await raw.integrity() == "ok"
    if not raw.is_postgres:
        assert store.path.exists()
        assert await raw.rows("PRAGMA journal_mode") == [("wal",)]  # persistent, not per connection


@pytest.mark.parametrize("mode, code", [("FULL", 2), ("NORMAL", 1)])
async def test_sqlite_connection_pragmas(tmp_path: Path, mode: str, code: int) -> None:
    async with await Store.open(tmp_path / "db.sqlite3", synchronous=mode) as s:
        assert (await s.db.fetch("PRAGMA synchronous"))[0][0] == code
        assert (await s.db.fetch("PRAGMA foreign_keys"))[0][0] == 1
        assert (await s.db.fetch("PRAGMA busy_timeout"))[0][0] >= 1000


async def test_postgres_commits_are_durable(pg_url: str) -> None:
    """A COMMIT returns only once its WAL is flushed: what "acknowledged after commit" needs."""
    async with await Store.open(pg_url) as s:
        settings_ = {r[0]: r[1] for r in await s.db.fetch(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')")}
        assert settings_ == {"fsync": "on", "synchronous_commit": "on"}


async def test_reopen_keeps_data_and_version(db_target: DatabaseTarget, raw: RawDB) -> None:
    async with await Store.open(db_target) as s:
        await s.names.submit(G1, ALICE, "Dinoxus")
    async with await Store.open(db_target) as s:
        assert [n.name for n in await s.names.list(G1)] == ["dinoxus"]
    assert await raw.schema_version() == SCHEMA_VERSION


async def test_upgrade_from_v1_keeps_data(db_target: DatabaseTarget, raw: RawDB) -> None:
    record_v1 = ("CREATE TABLE dinobot_schema (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL);"
                 "INSERT INTO dinobot_schema VALUES (1, 0);") if raw.is_postgres else "PRAGMA user_version = 1;"
    await raw.execute(migrations_of(raw).MIGRATIONS[0] + ";" + record_v1 + f"""
        INSERT INTO submissions (guild_id, name, submitter_id, created_at, status)
        VALUES ({G1}, 'oldsaurus', {ALICE}, {T0}, 'pending');
        INSERT INTO guild_settings (guild_id, review_required) VALUES ({G1}, 1);""")

    async with await Store.open(db_target) as s:
        (old,) = await s.names.pending(G1)
        assert (old.name, old.submitter_id, old.status) == ("oldsaurus", ALICE, Status.PENDING)
        assert (await s.settings.get(G1)).review_required
        assert (await s.names.submit(G1, BOB, "newsaurus")).status is Status.PENDING
    assert await raw.schema_version() == SCHEMA_VERSION
    index_query = ("SELECT indexname FROM pg_indexes" if raw.is_postgres
                   else "SELECT name FROM sqlite_master WHERE type='index'")
    indexes = {r[0] for r in await raw.rows(index_query)}
    assert {"submissions_limit", "submissions_untrained", "training_jobs_one_active"} <= indexes
    assert "live_replies" in await raw.tables()  # v3


async def test_live_replies_are_remembered_until_forgotten(store: Store) -> None:
    first = LiveReply(interaction_id=11, guild_id=G1, application_id=7, token="tok-1", message_id=21,
                      created_at=T0 + 5)
    second = LiveReply(interaction_id=12, guild_id=G2, application_id=7, token="tok-2", message_id=22,
                       created_at=T0)
    await store.live_replies.remember(first)
    await store.live_replies.remember(second)
    assert await store.live_replies.all() == [second, first]  # oldest first
    await store.live_replies.forget(12)
    await store.live_replies.forget(12)  # forgetting twice is harmless
    assert await store.live_replies.all() == [first]
    with pytest.raises(IntegrityViolation):  # a token is never empty
        await store.live_replies.remember(LiveReply(13, G1, 7, "", 23, T0))


async def test_newer_schema_is_refused_untouched(db_target: DatabaseTarget, raw: RawDB) -> None:
    newer = SCHEMA_VERSION + 1
    await raw.execute("CREATE TABLE future (x INTEGER);" + (
        f"CREATE TABLE dinobot_schema (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION);"
        f"INSERT INTO dinobot_schema VALUES ({newer}, 0);" if raw.is_postgres else f"PRAGMA user_version = {newer};"))
    with pytest.raises(SchemaTooNew) as info:
        await Store.open(db_target)
    assert f"schema version {newer}" in str(info.value)
    assert f"up to {SCHEMA_VERSION}" in str(info.value)
    assert isinstance(info.value, StorageError)
    assert await raw.schema_version() == newer
    assert await raw.tables() == ({"future", "dinobot_schema"} if raw.is_postgres else {"future"})
    if not raw.is_postgres:
        assert await raw.rows("PRAGMA journal_mode") == [("delete",)]  # not even switched to WAL


async def test_failed_migration_rolls_back_whole_step(
    db_target: DatabaseTarget, raw: RawDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Store.open(db_target) as s:
        await s.names.submit(G1, ALICE, "keeper")
    broken = "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);"
    module = migrations_of(raw)
    monkeypatch.setattr(module, "MIGRATIONS", [*module.MIGRATIONS, broken])
    monkeypatch.setattr(module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(asyncpg.UndefinedTableError if raw.is_postgres else sqlite3.OperationalError):
        await Store.open(db_target)
    assert await raw.schema_version() == SCHEMA_VERSION
    assert "half_done" not in await raw.tables()
    assert await raw.rows("SELECT name FROM submissions") == [("keeper",)]


async def test_two_processes_opening_a_new_postgres_database_at_once_migrate_it_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(pg_url) for _ in range(4)))
    try:
        rows = await stores[0].db.fetch("SELECT version FROM dinobot_schema ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await asyncio.gather(*(s.close() for s in stores))


def test_split_statements_respects_trigger_bodies() -> None:
    script = """
    CREATE TABLE a (x); -- a comment; with a semicolon
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        INSERT INTO a VALUES (';'); SELECT 1;
    END;
    """
    parts = split_statements(script)
    assert len(parts) == 2
    assert "CREATE TRIGGER" in parts[1] and parts[1].endswith("END;")
    for migration in MIGRATIONS:
        assert all(sqlite3.complete_statement(p) for p in split_statements(migration))
    assert len(MIGRATIONS) == len(pg_migrations.MIGRATIONS)  # one schema version, two dialects


async def test_both_backends_build_the_same_tables_columns_and_nullability(tmp_path: Path, pg_url: str) -> None:
    """The schema is written once per dialect (migrations.py and pg_migrations.py): this is what
    keeps the two from drifting apart, and what ``db copy`` relies on."""
    schemas = []
    for target in (as_target(tmp_path / "db.sqlite3"), as_target(pg_url)):
        async with await Store.open(target):
            pass
        peek = RawDB(target)
        try:
            schemas.append(await peek.columns())
        finally:
            await peek.close()
    sqlite_schema, pg_schema = schemas
    assert set(sqlite_schema) == set(pg_schema) and len(sqlite_schema) >= 8
    for table, columns in sqlite_schema.items():
        assert columns == pg_schema[table], table


# ---------------------------------------------------------------------- submissions


async def test_submit_normalises_and_acknowledges(store: Store, raw: RawDB) -> None:
    sub = await store.names.submit(G1, ALICE, "  Dinoxus ")
    assert (sub.name, sub.status, sub.guild_id, sub.submitter_id) == (
        "dinoxus", Status.APPROVED, G1, ALICE)
    assert sub.status == "approved" and f"{sub.status}" == str(sub.status) == "approved"
    assert sub.created_at == T0
    assert await raw.rows("SELECT id, name FROM submissions") == [(sub.id, "dinoxus")]


async def test_name_unique_per_guild_only(store: Store) -> None:
    await store.names.submit(G1, ALICE, "Dinoxus")
    with pytest.raises(DuplicateName, match="already been submitted") as info:
        await store.names.submit(G1, BOB, "dinoxus")
    assert info.value.name == "dinoxus"
    assert (await store.names.submit(G2, BOB, "DINOXUS")).name == "dinoxus"
    assert await store.names.count(G1) == 1 and await store.names.count(G2) == 1


async def test_removed_name_still_counts_as_submitted(store: Store) -> None:
    sub = await store.names.submit(G1, ALICE, "dinoxus")
    await store.names.set_status(G1, sub.id, "removed", ADMIN)
    with pytest.raises(DuplicateName):
        await store.names.submit(G1, BOB, "dinoxus")


async def test_known_dinosaur_refused(store: Store) -> None:
    with pytest.raises(KnownDinosaur, match="already a known dinosaur"):
        await store.names.submit(G1, ALICE, "TYRANNOSAURUS")
    with pytest.raises(KnownDinosaur):
        await store.names.submit(G1, ALICE, " Velociraptor")
    assert await store.names.count(G1) == 0
    for i in range(3):  # refusals do not use up the daily limit
        await store.names.submit(G1, ALICE, name_for(i))


async def test_daily_limit_is_rolling_24h_per_member_per_guild(store: Store, clock: Clock) -> None:
    await store.names.submit(G1, ALICE, name_for(0))
    clock.advance(3600)
    await store.names.submit(G1, ALICE, name_for(1))
    clock.advance(3600)
    await store.names.submit(G1, ALICE, name_for(2))
    with pytest.raises(DailyLimitReached) as info:
        await store.names.submit(G1, ALICE, name_for(3))
    err = info.value
    assert (err.limit, err.resets_at) == (3, T0 + DAY_SECONDS)
    assert err.retry_after == DAY_SECONDS - 2 * 3600
    assert "3 names per 24 hours" in str(err) and "22 h" in str(err)
    # Other members, and the same member elsewhere, are unaffected.
    await store.names.submit(G1, BOB, name_for(3))
    await store.names.submit(G2, ALICE, name_for(3))
    # One second after the first submission leaves the window, exactly one slot opens.
    clock.now = T0 + DAY_SECONDS + 1
    await store.names.submit(G1, ALICE, name_for(4))
    with pytest.raises(DailyLimitReached) as info:
        await store.names.submit(G1, ALICE, name_for(5))
    assert info.value.resets_at == T0 + 3600 + DAY_SECONDS
    assert await store.names.count(G1) == 5  # 4 of Alice's, 1 of Bob's; refusals stored nothing


async def test_no_daily_limit(db_target: DatabaseTarget) -> None:
    async with await Store.open(db_target, daily_limit=None) as s:
        for i in range(30):
            await s.names.submit(G1, ALICE, name_for(i))
        assert await s.names.count(G1) == 30


async def test_concurrent_submits_race_safely(store: Store) -> None:
    same_name = await asyncio.gather(
        *(store.names.submit(G1, 5000 + i, "racesaurus") for i in range(20)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in same_name) == 1
    assert all(isinstance(r, DuplicateName) for r in same_name if isinstance(r, Exception))
    same_user = await asyncio.gather(
        *(store.names.submit(G1, ALICE, name_for(i)) for i in range(10)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in same_user) == 3
    assert all(isinstance(r, DailyLimitReached) for r in same_user if isinstance(r, Exception))


# Anything that is not 3-32 ASCII letters once trimmed must be refused and leave no trace.
VALID = re.compile(r"[A-Za-z]{3,32}")
LETTERS = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12)
NOT_A_LETTER = st.characters().filter(lambda c: not ("a" <= c.lower() <= "z" and c.isascii()))


@st.composite
def poisoned_names(draw: st.DrawFn) -> str:
    """A letter name with one foreign character inside it (so trimming cannot remove it)."""
    return draw(LETTERS) + draw(NOT_A_LETTER) + draw(LETTERS)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # one store, many inputs
@given(text=st.one_of(st.text(max_size=40), poisoned_names(), st.text("abcxyz", max_size=2),
                     st.text("abc", min_size=33, max_size=40)))
async def test_fuzz_only_letters_are_accepted(store: Store, raw: RawDB, text: str) -> None:
    before = await raw.rows("SELECT * FROM submissions")
    user = len(before) + 10_000  # a fresh member per example, so the limit never interferes
    if VALID.fullmatch(text.strip()):
        try:
            sub = await store.names.submit(G1, user, text)
        except DuplicateName:  # Hypothesis replays examples; the first one was stored
            assert text.strip().lower() in {row[2] for row in before}
            return
        assert sub.name == text.strip().lower() and re.fullmatch(r"[a-z]{3,32}", sub.name)
        return
    with pytest.raises(InvalidName):
        await store.names.submit(G1, user, text)
    assert await raw.rows("SELECT * FROM submissions") == before


# ---------------------------------------------------------------------- review and status


async def test_review_flow_and_audit(store: Store, clock: Clock) -> None:
    assert await store.settings.get(G1) == GuildSettings(G1, False, True)
    new = await store.settings.update(G1, ADMIN, review_required=True)
    assert new == GuildSettings(G1, review_required=True, schedule_enabled=True)

    sub = await store.names.submit(G1, ALICE, "Pendosaurus")
    assert sub.status is Status.PENDING
    assert [p.name for p in await store.names.pending(G1)] == ["pendosaurus"]
    assert await store.names.approved(G1) == []
    assert await untrained(store, G1) == []

    clock.advance(60)
    approved = await store.names.set_status(G1, "PENDOSAURUS", Status.APPROVED, ADMIN)
    assert (approved.status, approved.status_changed_by, approved.status_changed_at) == (
        Status.APPROVED, ADMIN, T0 + 60)
    assert await store.names.get(G1, sub.id) == approved
    assert await store.names.pending(G1) == []
    assert await store.names.approved(G1) == ["pendosaurus"]

    entries = await store.audit.recent(G1)
    assert [e.action for e in entries] == ["submission.approved", "settings.update"]
    assert entries[0].details == {"id": sub.id, "name": "pendosaurus",
                                  "from": "pending", "to": "approved"}
    assert entries[1].details == {"review_required": {"from": False, "to": True}}
    assert entries[0].actor_id == ADMIN and entries[0].created_at == T0 + 60


async def test_pending_is_oldest_first_and_limited(store: Store) -> None:
    await store.settings.update(G1, ADMIN, review_required=True)
    for i, user in enumerate((ALICE, BOB, ALICE)):
        await store.names.submit(G1, user, ["zeta", "alpha", "mid"][i] + "saurus")
    assert [p.name for p in await store.names.pending(G1)] == ["zetasaurus", "alphasaurus", "midsaurus"]
    assert len(await store.names.pending(G1, limit=2)) == 2


async def test_status_changes_never_delete(store: Store, raw: RawDB) -> None:
    sub = await store.names.submit(G1, ALICE, "dinoxus")
    await store.names.submit(G1, BOB, "keepsaurus")
    await store.names.set_status(G1, sub.id, "removed", ADMIN)
    await store.names.set_status(G1, "dinoxus", "rejected", ADMIN)
    assert await raw.rows("SELECT count(*) FROM submissions") == [(2,)]
    assert [s.name for s in await store.names.list(G1, status="rejected")] == ["dinoxus"]
    assert await store.names.approved(G1) == ["keepsaurus"]
    restored = await store.names.set_status(G1, sub.id, "approved", ADMIN)
    assert restored.status is Status.APPROVED
    assert await store.names.approved(G1) == ["dinoxus", "keepsaurus"]
    actions = [(e.action, e.details["from"]) for e in await store.audit.recent(G1)]
    assert actions == [("submission.approved", "rejected"), ("submission.rejected", "removed"),
                       ("submission.removed", "approved")]


async def test_same_status_is_a_quiet_no_op(store: Store) -> None:
    sub = await store.names.submit(G1, ALICE, "dinoxus")
    assert await store.names.set_status(G1, sub.id, "approved", ADMIN) == sub
    assert await store.settings.update(G1, ADMIN, schedule_enabled=True) == GuildSettings(G1)
    assert await store.audit.recent(G1) == []


async def test_not_found_and_bad_arguments(store: Store) -> None:
    with pytest.raises(NotFound, match="Submission #42 was not found"):
        await store.names.set_status(G1, 42, "approved", ADMIN)
    with pytest.raises(NotFound, match="'nosaurus' was not found"):
        await store.names.get(G1, "Nosaurus")
    with pytest.raises(InvalidName):
        await store.names.set_status(G1, "no such", "approved", ADMIN)
    with pytest.raises(ValueError):
        await store.names.set_status(G1, 1, "deleted", ADMIN)
    with pytest.raises(ValueError, match="unknown guild settings: colour"):
        await store.settings.update(G1, ADMIN, colour=True)
    assert issubclass(NotFound, DinoBotError)


async def test_list_and_count_filters(store: Store) -> None:
    for i, name in enumerate(["cbasaurus", "abasaurus", "bbasaurus"]):
        await store.names.submit(G1, 7000 + i, name)
    await store.names.set_status(G1, "bbasaurus", "removed", ADMIN)
    assert [s.name for s in await store.names.list(G1)] == ["abasaurus", "bbasaurus", "cbasaurus"]
    assert [s.name for s in await store.names.list(G1, limit=1, offset=1)] == ["bbasaurus"]
    assert [s.name for s in await store.names.list(G1, status=Status.APPROVED)] == [
        "abasaurus", "cbasaurus"]
    assert await store.names.count(G1) == 3
    assert await store.names.count(G1, "removed") == 1


async def test_recent_names_are_newest_first_filtered_and_limited(store: Store) -> None:
    for i, name in enumerate(["cbasaurus", "abasaurus", "bbasaurus"]):
        await store.names.submit(G1, 7000 + i, name)
    await store.names.submit(G2, ALICE, "otherosaurus")
    await store.names.set_status(G1, "abasaurus", "removed", ADMIN)
    assert [s.name for s in await store.names.recent(G1)] == ["bbasaurus", "abasaurus", "cbasaurus"]
    assert [s.name for s in await store.names.recent(G1, limit=2)] == ["bbasaurus", "abasaurus"]
    assert [s.name for s in await store.names.recent(G1, "approved")] == ["bbasaurus", "cbasaurus"]
    assert [s.name for s in await store.names.recent(G1, limit=None)][-1] == "cbasaurus"
    assert await store.names.recent(3) == []


async def test_set_status_only_from_refuses_a_decided_submission(store: Store) -> None:
    await store.settings.update(G1, ADMIN, review_required=True)
    sub = await store.names.submit(G1, ALICE, "Pendosaurus")
    first = await store.names.set_status(G1, sub.id, "approved", ADMIN, only_from="pending")
    assert first.status is Status.APPROVED
    second = await store.names.set_status(G1, sub.id, "rejected", BOB, only_from=Status.PENDING)
    assert second == first  # unchanged: someone decided first
    assert (await store.names.get(G1, sub.id)).status is Status.APPROVED
    assert [e.action for e in await store.audit.recent(G1)] == ["submission.approved", "settings.update"]


# ---------------------------------------------------------------------- model versions


async def test_versions_training_marks_and_new_name_counts(store: Store) -> None:
    for i in range(3):
        await store.names.submit(G1, 7000 + i, name_for(i))
    assert await store.names.count_new(G1) == 3
    assert await store.versions.next_number(G1) == 1
    assert await latest_promoted(store, G1) is None

    v1 = await store.versions.record(
        G1, trigger="admin", status="promoted", started_at=T0, finished_at=T0 + 4.5,
        checkpoint_path=Path("data/g/v1.npz"), names_used=2, train_loss_before=2.5,
        train_loss_after=1.9, val_loss_before=2.4, val_loss_after=2.2, requested_by=ADMIN,
        reason="better", trained_names=[name_for(0), name_for(1)],
    )
    assert v1 == 1
    assert await untrained(store, G1) == [name_for(2)]
    v2 = await store.versions.record(
        G1, trigger="schedule", status="discarded", started_at=T0 + 10, finished_at=T0 + 12,
        parent_version=v1, val_loss_after=float("nan"), reason="validation loss is NaN",
    )
    assert v2 == 2
    latest = await latest_promoted(store, G1)
    assert latest is not None and latest.version == 1
    assert (latest.checkpoint_path, latest.duration_s, latest.requested_by) == (
        str(Path("data/g/v1.npz")), 4.5, ADMIN)
    (discarded,) = await store.versions.list(G1, status="discarded")
    assert discarded.val_loss_after is None and discarded.parent_version == 1
    assert [v.version for v in await store.versions.list(G1)] == [1, 2]

    # A name keeps the version that first trained on it.
    await store.versions.record(G1, trigger="admin", status="promoted", started_at=T0 + 20,
                                finished_at=T0 + 21, parent_version=v1,
                                trained_names=[name_for(0), name_for(2), "unknownsaurus"])
    subs = {s.name: s.first_trained_version for s in await store.names.list(G1)}
    assert subs == {name_for(0): 1, name_for(1): 1, name_for(2): 3}
    assert await store.names.count_new(G1) == 0


async def test_version_errors(store: Store) -> None:
    common = dict(trigger="admin", started_at=T0, finished_at=T0 + 1)
    with pytest.raises(ValueError):
        await store.versions.record(G1, status="discarded", trained_names=["x"], **common)
    with pytest.raises(NotFound, match="parent model version 7"):
        await store.versions.record(G1, status="promoted", parent_version=7, **common)
    with pytest.raises(NotFound, match="parent model version 1"):  # itself, not an ancestor
        await store.versions.record(G1, status="promoted", parent_version=1, **common)
    with pytest.raises(NotFound, match="parent model version 3"):  # FK, not the Python check
        await store.versions.record(G1, status="promoted", parent_version=3, version=4, **common)
    await store.versions.record(G1, status="promoted", version=5, **common)
    with pytest.raises(StorageError, match="already recorded"):
        await store.versions.record(G1, status="promoted", version=5, **common)
    assert await store.versions.next_number(G1) == 6


async def test_a_promotion_stores_row_checkpoint_and_names_in_one_transaction(store: Store, raw: RawDB) -> None:
    await store.names.submit(G1, ALICE, name_for(0))
    common = dict(trigger="admin", status="promoted", started_at=T0, finished_at=T0 + 1)
    blob = bytes(range(256)) * 40
    v1 = await store.versions.record(G1, checkpoint=blob, trained_names=[name_for(0)], **common)
    data, digest = await store.versions.checkpoint(G1, v1)
    assert data == blob and len(digest) == 64
    assert await store.versions.checkpoint(G1, 2) is None and await store.versions.checkpoint(G2, v1) is None
    # A promotion that fails anywhere leaves nothing: no row, no bytes, no trained marks.
    await store.names.submit(G1, ALICE, name_for(1))
    with pytest.raises(NotFound):
        await store.versions.record(G1, checkpoint=blob, trained_names=[name_for(1)], parent_version=7, **common)
    assert [v.version for v in await store.versions.list(G1)] == [1]
    assert await raw.rows("SELECT count(*) FROM model_checkpoints") == [(1,)]
    assert await untrained(store, G1) == [name_for(1)]
    with pytest.raises(ValueError):
        await store.versions.record(G1, checkpoint=blob, **{**common, "status": "discarded"})


async def test_legacy_versions_get_their_checkpoint_once(store: Store) -> None:
    common = dict(trigger="admin", status="promoted", started_at=T0, finished_at=T0 + 1)
    await store.versions.record(G1, checkpoint_path=f"{G1}/v1.npz", **common)
    await store.versions.record(G1, checkpoint=b"new", **common)
    assert [(v.guild_id, v.version) for v in await store.versions.without_checkpoint()] == [(G1, 1)]
    assert await store.versions.attach_checkpoint(G1, 1, b"old bytes")
    assert not await store.versions.attach_checkpoint(G1, 1, b"other bytes")  # never replaced
    assert (await store.versions.checkpoint(G1, 1))[0] == b"old bytes"
    assert await store.versions.without_checkpoint() == []


async def test_guilds_with_new_names(store: Store) -> None:
    for i in range(3):
        await store.names.submit(G1, 7000 + i, name_for(i))
        await store.names.submit(G2, 7000 + i, name_for(i))
    await store.names.submit(G2, 7100, name_for(9))
    assert await store.names.guilds_with_new(3) == {G1: 3, G2: 4}
    assert await store.names.guilds_with_new(4) == {G2: 4}
    await store.settings.update(G2, ADMIN, schedule_enabled=False)
    assert await store.names.guilds_with_new(1, only_scheduled=True) == {G1: 3}
    assert await store.names.guilds_with_new(1) == {G1: 3, G2: 4}


# ---------------------------------------------------------------------- isolation


async def test_every_query_is_isolated_per_guild(store: Store) -> None:
    """Fill guild 2 with everything, then check guild 1 sees none of it and cannot touch it."""
    await store.settings.update(G2, ADMIN, review_required=True, schedule_enabled=False)
    g2_pending = await store.names.submit(G2, ALICE, "otherpending")
    await store.names.set_status(G2, "otherpending", "approved", ADMIN)
    await store.names.submit(G2, BOB, "othernew")
    await store.versions.record(G2, trigger="admin", status="promoted", started_at=T0,
                               finished_at=T0 + 1, trained_names=["otherpending"])
    await store.audit.log(G2, ADMIN, "finetune.request", {"by": "admin"})
    await store.names.submit(G2, ALICE, "sharedsaurus")

    assert await store.names.list(G1) == []
    assert await store.names.count(G1) == 0
    assert await store.names.pending(G1) == []
    assert await store.names.approved(G1) == []
    assert await untrained(store, G1) == []
    assert await store.names.count_new(G1) == 0
    assert await latest_promoted(store, G1) is None
    assert await store.versions.list(G1) == []
    assert await store.versions.next_number(G1) == 1
    assert await store.settings.get(G1) == GuildSettings(G1)
    assert await store.audit.recent(G1) == []
    assert G1 not in await store.names.guilds_with_new(0)

    # Guild 1 cannot reach guild 2's rows by id, name or version.
    with pytest.raises(NotFound):
        await store.names.set_status(G1, g2_pending.id, "removed", ADMIN)
    with pytest.raises(NotFound):
        await store.names.get(G1, "othernew")
    with pytest.raises(NotFound):
        await store.versions.record(G1, trigger="admin", status="promoted", started_at=T0,
                                   finished_at=T0, version=5, parent_version=1)
    # Guild 1's own activity leaves guild 2 as it was.
    mine = await store.names.submit(G1, ALICE, "sharedsaurus")
    assert mine.status is Status.APPROVED  # guild 2's review setting does not apply here
    await store.names.set_status(G1, mine.id, "removed", ADMIN)
    assert (await store.names.get(G2, "sharedsaurus")).status is Status.PENDING
    assert [p.name for p in await store.names.pending(G2)] == ["othernew", "sharedsaurus"]
    assert await store.names.approved(G2) == ["otherpending"]
    assert (await latest_promoted(store, G2)).version == 1
    assert [e.action for e in await store.audit.recent(G2)] == [
        "finetune.request", "submission.approved", "settings.update"]


# ---------------------------------------------------------------------- lifecycle and robustness


async def test_closed_store_refuses_work(db_target: DatabaseTarget) -> None:
    s = await Store.open(db_target)
    await s.close()
    await s.close()
    with pytest.raises(StorageError, match="closed"):
        await s.names.submit(G1, ALICE, "dinoxus")
    with pytest.raises(StorageError):
        await s.names.list(G1)


async def test_cancelled_operations_leave_no_open_transaction(store: Store, raw: RawDB) -> None:
    """Cancel transactions at every stage (queued, BEGIN sent, mid-body, COMMIT sent)."""
    subs = [await store.names.submit(G1, 7000 + i, name_for(i)) for i in range(3)]
    for round_ in range(20):
        status = ("removed", "approved")[round_ % 2]
        calls = [store.names.set_status(G1, s.id, status, ADMIN) for s in subs]
        calls.append(store.settings.update(G1, ADMIN, review_required=bool(round_ % 2)))
        tasks = [asyncio.create_task(c) for c in calls]
        for _ in range(round_ % 5):
            await asyncio.sleep(0)
        for task in tasks[::2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await store.names.submit(G1, ALICE, "aftersaurus")  # raises if a transaction were left open
    if raw.is_postgres:
        stuck = await raw.rows("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                               " AND state LIKE 'idle in transaction%'")
        assert stuck == [(0,)]
    else:
        assert not store.db.in_transaction
    assert await raw.integrity() == "ok"
    # A status change and its audit entry commit together or not at all.
    entries = await store.audit.recent(G1, limit=None)
    for s in subs:
        changes = [e for e in entries if e.details.get("id") == s.id]
        current = (await store.names.get(G1, s.id)).status.value
        assert (changes[0].details["to"] if changes else "approved") == current


async def test_log_action_and_audit_limit(store: Store) -> None:
    for i in range(5):
        await store.audit.log(G1, ADMIN, "finetune.request", {"n": i})
    entries = await store.audit.recent(G1, limit=2)
    assert [e.details["n"] for e in entries] == [4, 3]
    assert math.isclose(entries[0].created_at, T0)


async def test_submitted_names_covers_every_status_of_one_guild_only(db_target):
    store = await Store.open(db_target)
    try:
        await store.names.submit(1, 10, "Raptorix")
        await store.names.submit(1, 10, "zorgodon")
        await store.names.set_status(1, "zorgodon", "rejected", 99)
        await store.names.submit(2, 10, "otherosaurus")
        assert await store.names.submitted(1) == {"raptorix", "zorgodon"}
        assert await store.names.submitted(3) == set()
    finally:
        await store.close()


async def test_an_id_beyond_sqlites_integers_is_simply_not_found(tmp_path):
    """Found by the property test: a review button's id has up to 19 digits, past 2**63 - 1."""
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        for huge in (2**63, 10**19 - 1, -(2**63) - 1):
            with pytest.raises(NotFound):
                await store.names.get(1, huge)
            with pytest.raises(NotFound):
                await store.names.set_status(1, huge, "approved", 99, only_from="pending")
    finally:
        await store.close()


async def test_submitted_names_are_one_shared_live_read_only_view(tmp_path):
    """/dinoname reads a server's names per request: a copy of 100 000 names each time was the
    slowdown (issue 8, item 10), so every caller shares one view that follows new submissions."""
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        await store.names.submit(1, 10, "Raptorix")
        view = await store.names.submitted(1)
        await store.names.submit(1, 11, "zorgodon")
        assert "zorgodon" in view and len(view) == 2  # live: no snapshot was taken
        assert not hasattr(view, "add") and not hasattr(view, "discard")  # and read-only
        await store.keeps.keep(1, 12, "Keptosaurus")  # a ⭐ Keep adds the name through the same set
        assert "keptosaurus" in view and len(view) == 3
    finally:
        await store.close()


async def test_submitted_names_stays_current_after_it_is_cached(db_target):
    store = await Store.open(db_target)
    try:
        assert await store.names.submitted(1) == set()  # cached now
        await store.names.submit(1, 10, "Raptorix")
        read, _ = await asyncio.gather(store.names.submitted(1), store.names.submit(1, 11, "zorgodon"))
        assert "raptorix" in read
        assert await store.names.submitted(1) == {"raptorix", "zorgodon"}
    finally:
        await store.close()
    reopened = await Store.open(db_target)
    try:
        assert await reopened.names.submitted(1) == {"raptorix", "zorgodon"}
    finally:
        await reopened.close()


async def test_the_strength_setting_is_stored_audited_and_checked(store: Store) -> None:
    assert (await store.settings.get(G1)).strength == "normal"
    new = await store.settings.update(G1, ADMIN, strength="strong")
    assert new.strength == "strong" and (await store.settings.get(G1)).strength == "strong"
    assert (await store.settings.get(G2)).strength == "normal"
    (entry,) = await store.audit.recent(G1)
    assert entry.details == {"strength": {"from": "normal", "to": "strong"}}
    with pytest.raises(ValueError, match="strength must be one of subtle, normal, strong"):
        await store.settings.update(G1, ADMIN, strength="extreme")
    assert (await store.settings.get(G1)).strength == "strong"


# ---------------------------------------------------------------------- fine-tune jobs


async def test_one_active_job_per_guild_and_a_history(store: Store) -> None:
    job, created = await store.jobs.enqueue(G1, "admin", ADMIN)
    assert created and job.state is JobState.QUEUED and job.requested_by == ADMIN
    again, created = await store.jobs.enqueue(G1, "schedule", None)
    assert not created and again == job
    other, created = await store.jobs.enqueue(G2, "schedule", None)
    assert created and other.id != job.id
    assert [j.id for j in await store.jobs.active()] == [job.id, other.id]
    assert await store.jobs.finish(job.id, "cancelled", "cancelled by an admin")
    assert not await store.jobs.finish(job.id, "cancelled", "twice")
    third, created = await store.jobs.enqueue(G1, "admin", ADMIN)  # the old one is history now
    assert created and [j.state for j in await store.jobs.history(G1)] == [JobState.CANCELLED, JobState.QUEUED]


async def test_a_claim_is_exclusive_until_its_lease_expires(store: Store, clock: Clock) -> None:
    job, _ = await store.jobs.enqueue(G1, "admin", ADMIN)
    claims = await asyncio.gather(*(store.jobs.claim(job.id, f"process-{i}", ttl=30) for i in range(8)))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    lease = winners[0]
    assert await store.jobs.claim(job.id, "late-comer", ttl=30) is None
    clock.advance(20)
    assert await store.jobs.renew(lease, ttl=30)  # now good until T0 + 50
    clock.advance(25)
    assert await store.jobs.claim(job.id, "late-comer", ttl=30) is None
    clock.advance(10)  # the holder stopped renewing (killed): the lease ran out
    taken = await store.jobs.claim(job.id, "late-comer", ttl=30)
    assert taken is not None and (await store.jobs.get(job.id)).attempts == 2
    assert not await store.jobs.renew(lease, ttl=30)  # the old holder learns it lost the job
    assert not await store.jobs.finish(job.id, "failed", "old holder", lease=lease)
    assert await store.jobs.finish(job.id, "failed", "new holder", lease=taken)
    assert (await store.jobs.get(job.id)).reason == "new holder"


async def test_a_lost_lease_cannot_promote(store: Store, clock: Clock) -> None:
    await store.names.submit(G1, ALICE, name_for(0))
    job, _ = await store.jobs.enqueue(G1, "admin", ADMIN)
    lease = await store.jobs.claim(job.id, "slow-process", ttl=10)
    clock.advance(11)
    await store.jobs.claim(job.id, "other-process", ttl=10)
    common = dict(trigger="admin", status="promoted", started_at=T0, finished_at=T0 + 1)
    with pytest.raises(LeaseLost, match="no longer held"):
        await store.versions.record(G1, checkpoint=b"model", trained_names=[name_for(0)], lease=lease, **common)
    assert await store.versions.list(G1) == [] and await untrained(store, G1) == [name_for(0)]
    current = await store.jobs.claim(job.id, "other-process", ttl=10)
    version = await store.versions.record(G1, checkpoint=b"model", lease=current, **common)
    done = await store.jobs.get(job.id)
    assert (done.state, done.version, done.holder) == (JobState.DONE, version, "other-process")


async def test_a_job_whose_process_keeps_dying_is_given_up(store: Store, clock: Clock) -> None:
    job, _ = await store.jobs.enqueue(G1, "admin", ADMIN)
    for attempt in range(MAX_ATTEMPTS):  # each claimant dies without renewing
        assert await store.jobs.claim(job.id, f"dies-{attempt}", ttl=10) is not None
        clock.advance(11)
    assert await store.jobs.claim(job.id, "next", ttl=10) is None
    failed = await store.jobs.get(job.id)
    assert failed.state is JobState.FAILED and f"stopped {MAX_ATTEMPTS} times" in failed.reason
    assert await store.jobs.active() == []


async def test_two_stores_on_one_database_share_the_limits(db_target: DatabaseTarget, clock: Clock) -> None:
    """Two processes of a cluster: the daily limit and name uniqueness hold across them."""
    first = await Store.open(db_target, daily_limit=3, clock=clock)
    second = await Store.open(db_target, daily_limit=3, clock=clock)
    try:
        results = await asyncio.gather(
            *(store.names.submit(G1, ALICE, name_for(i)) for i, store in enumerate([first, second] * 5)),
            *(store.names.submit(G1, 6000 + i, "samesaurus") for i, store in enumerate([first, second] * 3)),
            return_exceptions=True)
        limited, same = results[:10], results[10:]
        assert sum(not isinstance(r, Exception) for r in limited) == 3
        assert all(isinstance(r, DailyLimitReached) for r in limited if isinstance(r, Exception))
        assert sum(not isinstance(r, Exception) for r in same) == 1
        assert all(isinstance(r, DuplicateName) for r in same if isinstance(r, Exception))
    finally:
        await first.close()
        await second.close()


def test_placeholders_become_numbered_outside_strings_and_casts() -> None:
    assert to_numbered("SELECT ? , '?' , ? -- ?\n") == ("SELECT $1 , '?' , $2 -- ?\n", ())
    assert to_numbered("SELECT :a, :b, :a, details::jsonb, ':c'") == ("SELECT $1, $2, $1, details::jsonb, ':c'",
                                                                     ("a", "b"))
    with pytest.raises(ValueError, match="mixes"):
        to_numbered("SELECT ?, :a")
    assert bind("SELECT :x + :y", {"y": 2, "x": 1}) == ("SELECT $1 + $2", [1, 2])
