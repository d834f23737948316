"""The store against real SQLite files: schema, submissions, reviews, versions, isolation."""
from __future__ import annotations

import asyncio
import math
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.services.store.db as store_module
from bot.errors import (
    DailyLimitReached,
    DinoBotError,
    DuplicateName,
    KnownDinosaur,
    NotFound,
    SchemaTooNew,
    StorageError,
)
from bot.services.store import DAY_SECONDS, GuildSettings, LiveReply, Status, Store
from bot.services.store.migrations import MIGRATIONS, SCHEMA_VERSION, split_statements
from model.errors import InvalidName
from tests.support.db_checks import integrity, latest_promoted, untrained
from tests.support.name_factory import name_for

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
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "dinobot.sqlite3"


@pytest.fixture
async def store(db_path: Path, clock: Clock):
    async with await Store.open(
        db_path, daily_limit=3, known_names=frozenset({"Tyrannosaurus", "velociraptor"}),
        clock=clock,
    ) as s:
        yield s


def sql(path: Path, query: str, params: tuple = ()) -> list[tuple]:
    """Read the file with plain sqlite3: what is on disk, not what the store says."""
    con = sqlite3.connect(path)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------- schema and migrations


async def test_open_creates_dirs_schema_and_wal(store: Store, db_path: Path) -> None:
    assert db_path.exists()
    assert sql(db_path, "PRAGMA journal_mode") == [("wal",)]  # persistent, not per connection
    assert sql(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in sql(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"submissions", "model_versions", "guild_settings", "audit_log"} <= tables
    assert integrity(store.path) == "ok"


@pytest.mark.parametrize("mode, code", [("FULL", 2), ("NORMAL", 1)])
async def test_connection_pragmas(tmp_path: Path, mode: str, code: int) -> None:
    async with await Store.open(tmp_path / "db.sqlite3", synchronous=mode) as s:
        assert (await s.db.fetch("PRAGMA synchronous"))[0][0] == code
        assert (await s.db.fetch("PRAGMA foreign_keys"))[0][0] == 1
        assert (await s.db.fetch("PRAGMA busy_timeout"))[0][0] >= 1000


async def test_reopen_keeps_data_and_version(db_path: Path) -> None:
    async with await Store.open(db_path) as s:
        await s.names.submit(G1, ALICE, "Dinoxus")
    async with await Store.open(db_path) as s:
        assert [n.name for n in await s.names.list(G1)] == ["dinoxus"]
    assert sql(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


async def test_upgrade_from_v1_keeps_data(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    con = sqlite3.connect(db_path)
    con.executescript(MIGRATIONS[0])
    con.execute("PRAGMA user_version = 1")
    con.execute(
        "INSERT INTO submissions (guild_id, name, submitter_id, created_at, status)"
        " VALUES (?, 'oldsaurus', ?, ?, 'pending')",
        (G1, ALICE, T0),
    )
    con.execute("INSERT INTO guild_settings (guild_id, review_required) VALUES (?, 1)", (G1,))
    con.commit()
    con.close()

    async with await Store.open(db_path) as s:
        (old,) = await s.names.pending(G1)
        assert (old.name, old.submitter_id, old.status) == ("oldsaurus", ALICE, Status.PENDING)
        assert (await s.settings.get(G1)).review_required
        assert (await s.names.submit(G1, BOB, "newsaurus")).status is Status.PENDING
    assert sql(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    indexes = {r[0] for r in sql(db_path, "SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"submissions_limit", "submissions_untrained"} <= indexes
    tables = {r[0] for r in sql(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "live_replies" in tables  # v3


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
    with pytest.raises(sqlite3.IntegrityError):  # a token is never empty
        await store.live_replies.remember(LiveReply(13, G1, 7, "", 23, T0))


async def test_newer_schema_is_refused_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    con = sqlite3.connect(db_path)
    con.execute("CREATE TABLE future (x)")
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(SchemaTooNew) as info:
        await Store.open(db_path)
    assert f"schema version {SCHEMA_VERSION + 1}" in str(info.value)
    assert f"up to {SCHEMA_VERSION}" in str(info.value)
    assert isinstance(info.value, StorageError)
    assert sql(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert sql(db_path, "PRAGMA journal_mode") == [("delete",)]  # not even switched to WAL


async def test_failed_migration_rolls_back_whole_step(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Store.open(db_path) as s:
        await s.names.submit(G1, ALICE, "keeper")
    broken = "CREATE TABLE half_done (x); INSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        await Store.open(db_path)
    assert sql(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert sql(db_path, "SELECT name FROM sqlite_master WHERE name = 'half_done'") == []
    assert sql(db_path, "SELECT name FROM submissions") == [("keeper",)]


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


# ---------------------------------------------------------------------- submissions


async def test_submit_normalises_and_acknowledges(store: Store, db_path: Path) -> None:
    sub = await store.names.submit(G1, ALICE, "  Dinoxus ")
    assert (sub.name, sub.status, sub.guild_id, sub.submitter_id) == (
        "dinoxus", Status.APPROVED, G1, ALICE)
    assert sub.status == "approved" and f"{sub.status}" == str(sub.status) == "approved"
    assert sub.created_at == T0
    assert sql(db_path, "SELECT id, name FROM submissions") == [(sub.id, "dinoxus")]


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


async def test_no_daily_limit(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "db.sqlite3", daily_limit=None) as s:
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
@given(raw=st.one_of(st.text(max_size=40), poisoned_names(), st.text("abcxyz", max_size=2),
                     st.text("abc", min_size=33, max_size=40)))
async def test_fuzz_only_letters_are_accepted(store: Store, db_path: Path, raw: str) -> None:
    before = sql(db_path, "SELECT * FROM submissions")
    user = len(before) + 10_000  # a fresh member per example, so the limit never interferes
    if VALID.fullmatch(raw.strip()):
        try:
            sub = await store.names.submit(G1, user, raw)
        except DuplicateName:  # Hypothesis replays examples; the first one was stored
            assert raw.strip().lower() in {row[2] for row in before}
            return
        assert sub.name == raw.strip().lower() and re.fullmatch(r"[a-z]{3,32}", sub.name)
        return
    with pytest.raises(InvalidName):
        await store.names.submit(G1, user, raw)
    assert sql(db_path, "SELECT * FROM submissions") == before


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


async def test_status_changes_never_delete(store: Store, db_path: Path) -> None:
    sub = await store.names.submit(G1, ALICE, "dinoxus")
    await store.names.submit(G1, BOB, "keepsaurus")
    await store.names.set_status(G1, sub.id, "removed", ADMIN)
    await store.names.set_status(G1, "dinoxus", "rejected", ADMIN)
    assert sql(db_path, "SELECT count(*) FROM submissions") == [(2,)]
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


async def test_closed_store_refuses_work(db_path: Path) -> None:
    s = await Store.open(db_path)
    await s.close()
    await s.close()
    with pytest.raises(StorageError, match="closed"):
        await s.names.submit(G1, ALICE, "dinoxus")
    with pytest.raises(StorageError):
        await s.names.list(G1)


async def test_cancelled_operations_leave_no_open_transaction(store: Store) -> None:
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
    assert not store.db._db.in_transaction
    assert integrity(store.path) == "ok"
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


async def test_submitted_names_covers_every_status_of_one_guild_only(tmp_path):
    store = await Store.open(tmp_path / "s.sqlite3")
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


async def test_submitted_names_stays_current_after_it_is_cached(tmp_path):
    store = await Store.open(tmp_path / "s.sqlite3")
    try:
        assert await store.names.submitted(1) == set()  # cached now
        await store.names.submit(1, 10, "Raptorix")
        read, _ = await asyncio.gather(store.names.submitted(1), store.names.submit(1, 11, "zorgodon"))
        assert "raptorix" in read
        assert await store.names.submitted(1) == {"raptorix", "zorgodon"}
    finally:
        await store.close()
    reopened = await Store.open(tmp_path / "s.sqlite3")
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
