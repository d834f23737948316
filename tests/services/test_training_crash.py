"""kill -9 during a fine-tune, mid checkpoint write, or between the file and the commit.

The test process first promotes a real version 1 for the guild. Then, for each kill point, a
child process (``tests/support/training_crash_child.py``) starts a second fine-tune while submitting
names, and dies with SIGKILL: killed by the test once an epoch is reported, or killing itself
inside ``save_checkpoint`` (temp file written, not yet renamed) or just before the database
commit (checkpoint in place, no row). After each death the test restarts the services on the
same files and checks: every acknowledged submission is there, the database passes
``PRAGMA integrity_check``, the guild is served version 1 (the last good one), and no temp
file or uncommitted checkpoint remains. Finally a fine-tune in the test process becomes
version 2, so a crash never burns or corrupts a version number.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.services.registry import ModelRegistry
from bot.services.store import Store, VersionStatus
from bot.services.training.service import TrainingService
from tests.services.test_training_service import FAST, NAMES, add_names
from tests.support.db_checks import integrity

REPO = Path(__file__).resolve().parents[2]
CHILD = REPO / "tests" / "support" / "training_crash_child.py"
GUILD = 4242

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="the child finds temp files through /proc/self/fd")


def run_child(db: Path, models: Path, mode: str) -> tuple[dict[int, str], list[str]]:
    """Run the child until it dies; its acknowledged names and the other lines it printed."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    acked: dict[int, str] = {}
    events: list[str] = []
    with subprocess.Popen([sys.executable, str(CHILD), str(db), str(models), str(GUILD), mode],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                          env=env) as proc:
        watchdog = threading.Timer(20, proc.kill)  # never hang the suite on a stuck child
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


async def restart_and_check(db: Path, models: Path, acked: dict[int, str]) -> None:
    async with await Store.open(db, daily_limit=None) as store:
        assert integrity(store.path) == "ok"
        stored = {s.id: s.name for s in await store.names.list(GUILD)}
        lost = {i: n for i, n in acked.items() if stored.get(i) != n}
        assert not lost, f"{len(lost)} acknowledged names lost, e.g. {list(lost.items())[:5]}"
        registry = ModelRegistry(store, models)
        await registry.start()
        served = await registry.get(GUILD)
        assert served.version == 1 and served.checkpoint == models / str(GUILD) / "v1.npz"
        assert [v.version for v in await store.versions.list(GUILD)] == [1]
    left = sorted(p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file())
    assert left == [f"{GUILD}/v1.npz"], left


async def test_killed_fine_tunes_leave_the_last_good_model_and_every_submission(
        tmp_path: Path) -> None:
    db, models = tmp_path / "dinobot.sqlite3", tmp_path / "models"
    async with await Store.open(db, daily_limit=None) as store:
        await add_names(store, GUILD, NAMES)
        registry = ModelRegistry(store, models)
        await registry.start()
        async with TrainingService(store, registry, FAST) as service:
            assert (await (await service.request(GUILD, 1)).wait()).promoted
    acked: dict[int, str] = {}

    names, events = run_child(db, models, "train")
    acked.update(names)
    assert any(e.startswith("P ") for e in events) and len(names) >= 20
    await restart_and_check(db, models, acked)

    names, events = run_child(db, models, "write")
    acked.update(names)
    assert events[-1] == "W" and list((models / str(GUILD)).glob(".v2.npz.*.tmp"))
    await restart_and_check(db, models, acked)

    names, events = run_child(db, models, "commit")
    acked.update(names)
    assert events[-1] == "C v2.npz" and (models / str(GUILD) / "v2.npz").is_file()
    await restart_and_check(db, models, acked)

    async with await Store.open(db, daily_limit=None) as store:
        registry = ModelRegistry(store, models)
        await registry.start()
        async with TrainingService(store, registry, FAST) as service:
            outcome = await (await service.request(GUILD, 1)).wait()
        assert outcome.promoted and outcome.version == 2
        assert (await registry.get(GUILD)).version == 2
        assert [v.status for v in await store.versions.list(GUILD)] == [VersionStatus.PROMOTED] * 2
