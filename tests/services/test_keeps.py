"""Keeping names (votes, not duplicates) and /names top, on both backends."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.errors import AlreadyKept, DailyLimitReached, KnownDinosaur, NotKeepable
from bot.services.store import DatabaseTarget, Status, Store
from bot.services.store.migrations import MIGRATIONS
from model.errors import InvalidName
from tests.services.test_store import ALICE, BOB, G1, G2, T0, Clock, sql
from tests.support.stores import RawDB

CAROL = 1003


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(db_target: DatabaseTarget, clock: Clock):
    async with await Store.open(db_target, daily_limit=2, known_names={"tyrannosaurus"}, clock=clock) as s:
        yield s


async def test_the_first_keep_adds_the_name_and_later_keeps_are_votes(store: Store, clock: Clock,
                                                                      db_target: DatabaseTarget) -> None:
    first = await store.keeps.keep(G1, ALICE, "  Glimmerosaurus ")
    assert first.first_keep and first.keeps == 1 and (first.first_by, first.first_at) == (ALICE, T0)
    assert (first.submission.name, first.submission.submitter_id) == ("glimmerosaurus", ALICE)
    assert first.submission.status is Status.APPROVED
    clock.advance(60)
    second = await store.keeps.keep(G1, BOB, "glimmerosaurus")
    assert not second.first_keep and second.keeps == 2 and second.first_by == ALICE
    assert second.submission.id == first.submission.id  # one name, two votes
    assert await store.names.count(G1) == 1 and await store.keeps.count(G1, "Glimmerosaurus") == 2
    assert "glimmerosaurus" in await store.names.submitted(G1)  # /dinoname will not offer it again
    raw = RawDB(db_target)
    try:
        assert await raw.integrity() == "ok"
    finally:
        await raw.close()


async def test_a_member_keeps_a_name_once(store: Store) -> None:
    await store.keeps.keep(G1, ALICE, "glimmerosaurus")
    with pytest.raises(AlreadyKept, match="already kept 'glimmerosaurus'"):
        await store.keeps.keep(G1, ALICE, "GLIMMEROSAURUS")
    assert await store.keeps.count(G1, "glimmerosaurus") == 1


async def test_keeping_runs_the_same_checks_as_submit(store: Store) -> None:
    with pytest.raises(KnownDinosaur):
        await store.keeps.keep(G1, ALICE, "Tyrannosaurus")
    with pytest.raises(InvalidName):
        await store.keeps.keep(G1, ALICE, "ty7")
    await store.names.submit(G1, ALICE, "one")
    await store.keeps.keep(G1, ALICE, "two")  # the second name of the day
    with pytest.raises(DailyLimitReached):
        await store.keeps.keep(G1, ALICE, "three")  # a third new name: over the limit of 2
    assert await store.names.count(G1) == 2 and await store.keeps.count(G1, "three") == 0
    # A vote adds no name, so it does not count against the limit.
    await store.keeps.keep(G1, BOB, "onesaurus")
    assert (await store.keeps.keep(G1, ALICE, "onesaurus")).keeps == 2


async def test_review_setting_applies_and_rejected_names_cannot_be_kept(store: Store) -> None:
    await store.settings.update(G1, CAROL, review_required=True)
    kept = await store.keeps.keep(G1, ALICE, "hushosaurus")
    assert kept.submission.status is Status.PENDING
    await store.names.set_status(G1, "hushosaurus", Status.REJECTED, CAROL)
    with pytest.raises(NotKeepable, match="was rejected by a moderator"):
        await store.keeps.keep(G1, BOB, "hushosaurus")


async def test_two_members_keeping_a_new_name_at_once_make_one_name_and_two_votes(store: Store) -> None:
    kept = await asyncio.gather(store.keeps.keep(G1, ALICE, "twinosaurus"), store.keeps.keep(G1, BOB, "twinosaurus"))
    assert sorted(k.first_keep for k in kept) == [False, True] and max(k.keeps for k in kept) == 2
    assert await store.names.count(G1) == 1


async def test_top_ranks_approved_names_by_keeps_then_first_keep(store: Store, clock: Clock) -> None:
    for member, name in [(ALICE, "alphaurus"), (BOB, "betaurus"), (CAROL, "gammaurus")]:
        await store.keeps.keep(G1, member, name)
        clock.advance(10)
    for member in (BOB, ALICE):
        await store.keeps.keep(G1, member, "gammaurus")
    await store.keeps.keep(G1, ALICE, "betaurus")
    await store.keeps.keep(G2, ALICE, "otheraurus")  # another server's keeps never count here
    await store.names.set_status(G1, "alphaurus", Status.REMOVED, CAROL)
    top = await store.keeps.top(G1)
    assert [(f.name, f.keeps, f.first_by) for f in top] == [("gammaurus", 3, CAROL), ("betaurus", 2, BOB)]
    assert top[0].first_at == T0 + 20
    assert await store.keeps.top(G1, limit=1) == top[:1]
    assert await store.keeps.top(333) == []


async def test_upgrade_from_v2_adds_the_new_tables_and_keeps_the_data(tmp_path: Path) -> None:
    import sqlite3
    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        con.executescript(script)
    con.execute("PRAGMA user_version = 2")
    con.execute("INSERT INTO submissions (guild_id, name, submitter_id, created_at, status)"
                " VALUES (?, 'oldsaurus', ?, ?, 'approved')", (G1, ALICE, T0))
    con.commit()
    con.close()
    async with await Store.open(path) as s:
        assert (await s.keeps.keep(G1, BOB, "oldsaurus")).keeps == 1  # a vote for an old name
    tables = {r[0] for r in sql(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"keeps", "served_versions"} <= tables
