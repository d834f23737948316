"""``python -m bot db copy``: everything arrives, checked; a rerun is harmless; nothing is overwritten.

A real SQLite store is filled with one of everything (names in every status, settings, the
audit log, a promoted version with its checkpoint, a discarded one, a version an older DinoBot
recorded with only a checkpoint *file*, finished and queued jobs), copied to a real PostgreSQL
database, and read back through the store on the other side.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot import db_command
from bot.services.store import DatabaseTarget, Store
from bot.services.store.copy import CopyRefused, copy_database
from model import BASE_CHECKPOINT, checkpoint_bytes, load_checkpoint
from tests.support.name_factory import name_for

REPO = Path(__file__).resolve().parents[2]
G1, G2 = 111_111_111_111_111_111, 222_222_222_222_222_222
ADMIN = 9001


async def fill(store: Store, legacy_dir: Path) -> None:
    for i in range(30):
        await store.names.submit(G1 if i % 3 else G2, 1000 + i, name_for(i))
    await store.settings.update(G2, ADMIN, review_required=True)
    await store.names.submit(G2, 2000, "pendosaurus")
    await store.names.set_status(G1, name_for(1), "removed", ADMIN)
    await store.names.set_status(G1, name_for(2), "rejected", ADMIN)
    common = dict(trigger="admin", started_at=1.0, finished_at=2.5, requested_by=ADMIN)
    legacy_dir.joinpath(str(G2)).mkdir(parents=True)
    legacy_dir.joinpath(str(G2), "v1.npz").write_bytes(checkpoint_bytes(load_checkpoint(BASE_CHECKPOINT), tag="file"))
    await store.versions.record(G2, status="promoted", checkpoint_path=f"{G2}/v1.npz", **common)
    job, _ = await store.jobs.enqueue(G1, "admin", ADMIN)
    lease = await store.jobs.claim(job.id, "a-process", ttl=60)
    model = checkpoint_bytes(load_checkpoint(BASE_CHECKPOINT), tag="db")
    await store.versions.record(G1, status="promoted", checkpoint=model, trained_names=[name_for(4), name_for(5)],
                                val_loss_after=1.25, lease=lease, reason="promoted: test", **common)
    await store.versions.record(G1, status="discarded", parent_version=1, val_loss_after=float("nan"),
                                reason="discarded: test", **common)
    await store.jobs.enqueue(G2, "schedule", None)
    await store.audit.log(G1, ADMIN, "finetune.request", {"trigger": "admin", "ünïcode": "🦕"})


async def snapshot(store: Store) -> dict:
    """Everything the bot can read, through the store's own API."""
    out = {}
    for g in (G1, G2):
        out[g] = (await store.names.list(g), await store.versions.list(g), await store.settings.get(g),
                  await store.audit.recent(g, limit=None), await store.jobs.history(g),
                  [await store.versions.checkpoint(g, v.version) for v in await store.versions.list(g)])
    return out


@pytest.fixture
async def filled(tmp_path: Path) -> tuple[DatabaseTarget, Path]:
    source = DatabaseTarget.sqlite(tmp_path / "var" / "dinobot.sqlite3")
    legacy = tmp_path / "var" / "models"
    async with await Store.open(source) as store:
        await fill(store, legacy)
    return source, legacy


async def test_everything_arrives_checked_and_a_rerun_does_nothing(filled, pg_url: str) -> None:
    source_target, legacy = filled
    target_target = DatabaseTarget("postgresql", pg_url)
    async with await Store.open(source_target) as source, await Store.open(target_target) as target:
        report = await copy_database(source.db, target.db, legacy_dir=legacy)
        assert report.ok and not report.already_copied and report.legacy_files == 1, report
        counts = {t.name: (t.source, t.added, t.target_after) for t in report.tables}
        assert counts["submissions"] == (31, 31, 31) and counts["audit_log"] == (4, 4, 4)
        assert counts["model_checkpoints"] == (1, 2, 2)  # one stored, one from the legacy file
        assert counts["model_versions"] == (3, 3, 3) and counts["training_jobs"] == (2, 2, 2)
        before = await snapshot(source)
        after = await snapshot(target)
        legacy_bytes = (legacy / str(G2) / "v1.npz").read_bytes()
        assert after[G2][5][0][0] == legacy_bytes  # the file's bytes, now in the database
        after[G2] = (*after[G2][:5], [None])  # the source still has only the file for that version
        assert after == before

        again = await copy_database(source.db, target.db, legacy_dir=legacy)
        assert again.ok and again.already_copied and all(t.added == 0 for t in again.tables)

        # The copy kept the ids, and new rows continue after them.
        fresh = await target.names.submit(G1, 5555, "newosaurus")
        assert fresh.id == max(s.id for s in before[G1][0] + before[G2][0]) + 1
        assert (await target.jobs.enqueue(G2, "admin", ADMIN))[1] is False  # the copied queued job is active


async def test_a_target_with_other_rows_is_refused_and_force_never_overwrites(filled, pg_url: str) -> None:
    source_target, legacy = filled
    async with await Store.open(source_target) as source, await Store.open(pg_url) as target:
        mine = await target.names.submit(G1, 42, "targetosaurus")  # id 1, which the source uses too
        with pytest.raises(CopyRefused, match="--force"):
            await copy_database(source.db, target.db, legacy_dir=legacy)
        assert await target.names.count(G1) == 1  # refused before writing anything
        report = await copy_database(source.db, target.db, force=True, legacy_dir=legacy)
        assert not report.ok
        (conflict,) = [c for t in report.tables for c in t.conflicts]
        assert conflict == "submissions (1,): differs between source and target"
        assert (await target.names.get(G1, mine.id)).name == "targetosaurus"  # kept as it was
        subs = {t.name: t for t in report.tables}["submissions"]
        assert (subs.source, subs.target_before, subs.added, subs.target_after) == (31, 1, 30, 31)


async def test_postgres_back_to_sqlite(filled, pg_url: str, tmp_path: Path) -> None:
    source_target, legacy = filled
    async with await Store.open(source_target) as source, await Store.open(pg_url) as middle:
        assert (await copy_database(source.db, middle.db, legacy_dir=legacy)).ok
        async with await Store.open(tmp_path / "back.sqlite3") as back:
            assert (await copy_database(middle.db, back.db)).ok
            assert await snapshot(back) == await snapshot(middle)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "db", "copy", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)


async def test_the_command_line(filled, pg_url: str, tmp_path: Path) -> None:
    source_target, _ = filled
    source = f"sqlite:///{source_target.path}"  # an absolute path: sqlite:////tmp/...
    first = run_cli("--from", source, "--to", pg_url)
    assert first.returncode == 0, first.stderr
    assert "OK: every row of the source is in the target" in first.stdout
    assert "checkpoint files moved into the database: 1" in first.stdout  # found next to the file
    assert "submissions" in first.stdout and "31" in first.stdout
    second = run_cli("--from", source, "--to", pg_url)
    assert second.returncode == 0 and "Nothing to do" in second.stdout, second.stdout + second.stderr
    other = DatabaseTarget.sqlite(tmp_path / "other.sqlite3")
    async with await Store.open(other) as store:
        await store.names.submit(G1, 1, "othersaurus")
    refused = run_cli("--from", source, "--to", str(other.path))
    assert refused.returncode == 1 and "--force" in refused.stderr and "Traceback" not in refused.stderr


def test_command_line_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert db_command.main(["copy", "--from", str(tmp_path / "nope.sqlite3"), "--to", str(tmp_path / "b")]) == 1
    assert "no SQLite database" in capsys.readouterr().err
    assert db_command.main(["copy", "--from", str(tmp_path / "a"), "--to", str(tmp_path / "a")]) == 1
    assert "the same database" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        db_command.main(["copy", "--from", "mysql://x/y", "--to", str(tmp_path / "b")])
    assert exit_.value.code == 2 and "must start with" in capsys.readouterr().err
