"""kill -9 during a fine-tune, or inside the promotion's transaction, on both backends.

The test process first promotes a real version 1 for the guild. Then, for each kill point, a
child process (``tests/support/training_crash_child.py``) runs a second fine-tune while submitting
names, and dies with SIGKILL: killed by the test once an epoch is reported, or killing itself
inside the promotion's transaction (version row and checkpoint bytes written, not committed).
After each death the test restarts the services on the same database and checks: every
acknowledged submission is there, the database passes its engine's integrity checks, the guild
is served version 1 (the last good one), and neither a version row nor checkpoint bytes of the
dead attempt exist. Finally the test process starts the training service as a restarted bot
would: the dead child's job is still in the database, runs again once its lease has expired,
and becomes version 2, so a crash never loses a job, burns a version number or half-writes one.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from bot.services.registry import ModelRegistry
from bot.services.store import DatabaseTarget, JobState, Store, VersionStatus
from bot.services.training.service import TrainingService
from tests.services.test_training_service import FAST, NAMES, add_names
from tests.support.stores import RawDB

REPO = Path(__file__).resolve().parents[2]
CHILD = REPO / "tests" / "support" / "training_crash_child.py"
GUILD = 4242

def run_child(target: DatabaseTarget, mode: str) -> tuple[dict[int, str], list[str]]:
    """Run the child until it dies; its acknowledged names and the other lines it printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    acked: dict[int, str] = {}
    events: list[str] = []
    with subprocess.Popen([sys.executable, str(CHILD), target.location, str(GUILD), mode],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                          env=env) as proc:
        watchdog = threading.Timer(40, proc.kill)  # never hang the suite on a stuck child
        watchdog.start()
        try:
            for line in proc.stdout:  # read to EOF: lines in the pipe were printed before death
                kind, *rest = line.split()
                if kind == "N":
                    acked[int(rest[0])] = rest[1]
                else:
                    events.append(line.strip())
                if mode == "train" and kind == "P" and len(acked) >= 20 and proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
            stderr = proc.stderr.read()
            proc.wait()
        finally:
            watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL, f"child was not killed:\n{events}\n{stderr}"
    return acked, events


async def restart_and_check(target: DatabaseTarget, acked: dict[int, str]) -> None:
    raw = RawDB(target)
    try:
        assert await raw.integrity() == "ok"
        assert await raw.rows("SELECT guild_id, version FROM model_checkpoints") == [(GUILD, 1)]
    finally:
        await raw.close()
    async with await Store.open(target, daily_limit=None) as store:
        stored = {s.id: s.name for s in await store.names.list(GUILD)}
        lost = {i: n for i, n in acked.items() if stored.get(i) != n}
        assert not lost, f"{len(lost)} acknowledged names lost, e.g. {list(lost.items())[:5]}"
        registry = ModelRegistry(store)
        await registry.start()
        served = await registry.get(GUILD)
        assert served.version == 1 and served.source == f"database: guild {GUILD} v1"
        assert [v.version for v in await store.versions.list(GUILD)] == [1]


async def test_killed_fine_tunes_leave_the_last_good_model_and_every_submission(db_target: DatabaseTarget) -> None:
    async with await Store.open(db_target, daily_limit=None) as store:
        await add_names(store, GUILD, NAMES)
        registry = ModelRegistry(store)
        await registry.start()
        async with TrainingService(store, registry, FAST) as service:
            assert (await (await service.request(GUILD, 1)).wait()).promoted
    acked: dict[int, str] = {}

    names, events = await asyncio.to_thread(run_child, db_target, "train")
    acked.update(names)
    assert any(e.startswith("P ") for e in events) and len(names) >= 20
    await restart_and_check(db_target, acked)

    names, events = await asyncio.to_thread(run_child, db_target, "commit")
    acked.update(names)
    assert events[-1] == "C 2", events  # died inside the promotion of version 2
    (job_line,) = [e for e in events if e.startswith("J ")]
    await restart_and_check(db_target, acked)

    async with await Store.open(db_target, daily_limit=None) as store:
        (pending,) = await store.jobs.active()  # the killed children's job, never finished
        assert pending.id == int(job_line.split()[1]) and pending.state is JobState.RUNNING
        registry = ModelRegistry(store)
        await registry.start()
        async with TrainingService(store, registry, FAST) as service:  # as a restarted bot does
            job = service.job(GUILD)
            assert job is not None and job.id == pending.id
            outcome = await asyncio.wait_for(job.wait(), 30)
        assert outcome.promoted and outcome.version == 2
        assert (await registry.get(GUILD)).version == 2
        assert [v.status for v in await store.versions.list(GUILD)] == [VersionStatus.PROMOTED] * 2
        (finished,) = [j for j in await store.jobs.history(GUILD) if j.id == pending.id]
        assert (finished.state, finished.version, finished.attempts) == (JobState.DONE, 2, 3)
