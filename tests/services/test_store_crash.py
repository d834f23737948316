"""kill -9 in the middle of a burst of writes loses nothing that was acknowledged.

A child process opens the store and submits names from several concurrent tasks (plus a task
toggling a guild setting, for multi-statement transactions), printing each result only after
the store call returned. The test SIGKILLs it mid-burst, several times over the same file,
then reopens: every acknowledged write must be there, the file must pass integrity checks, and
no file other than the database and its WAL/SHM may be left behind.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from bot.services.store import Store
from tests.support.db_checks import integrity

REPO = Path(__file__).resolve().parents[2]
GUILD = 4242

CHILD = r"""
import asyncio, itertools, sys
from bot.services.store import Store
from tests.support.name_factory import letters

async def main(path, prefix, synchronous):
    store = await Store.open(path, daily_limit=None, synchronous=synchronous)
    counter = itertools.count()

    async def submitter():
        while True:
            i = next(counter)
            sub = await store.names.submit(GUILD, 10_000 + i, prefix + letters(i))
            print("N", sub.id, sub.name, flush=True)  # only after submit returned

    async def toggler():
        for i in itertools.count():
            current = await store.settings.get(GUILD)
            await store.settings.update(GUILD, 1, review_required=not current.review_required)
            print("S", i, flush=True)

    print("READY", flush=True)
    await asyncio.gather(*(submitter() for _ in range(4)), toggler())

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
""".replace("GUILD", str(GUILD))


def run_and_kill(db: Path, prefix: str, synchronous: str, kill_after: int) -> tuple[dict, int]:
    """Run the child until it acknowledged ``kill_after`` names, SIGKILL it, collect its acks.

    Lines still in the pipe after the kill were printed before it, so they count as
    acknowledged too: the test reads to EOF.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    names: dict[int, str] = {}
    toggles = 0
    killed = False
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), prefix, synchronous],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    ) as proc:
        watchdog = threading.Timer(30, proc.kill)  # never hang the suite on a stuck child
        watchdog.start()
        try:
            for line in proc.stdout:
                kind, *rest = line.split()
                if kind == "N":
                    names[int(rest[0])] = rest[1]
                elif kind == "S":
                    toggles += 1
                if not killed and len(names) >= kill_after:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed = True
            stderr = proc.stderr.read()
            proc.wait()
        finally:
            watchdog.cancel()
    assert killed and proc.returncode == -signal.SIGKILL, f"child ended on its own:\n{stderr}"
    return names, toggles


def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "dinobot.sqlite3"
    acked: dict[int, str] = {}
    acked_toggles = 0
    rounds = [("alpha", "FULL", 150), ("beta", "NORMAL", 400), ("gamma", "FULL", 40),
              ("delta", "NORMAL", 250)]
    for prefix, synchronous, kill_after in rounds:
        names, toggles = run_and_kill(db, prefix, synchronous, kill_after)
        acked.update(names)
        acked_toggles += toggles
        left = {p.name for p in tmp_path.iterdir()}
        assert left <= {db.name, db.name + "-wal", db.name + "-shm"}, left
        asyncio.run(check_store(db, acked, acked_toggles))


async def check_store(db: Path, acked: dict[int, str], acked_toggles: int) -> None:
    async with await Store.open(db) as store:
        assert integrity(store.path) == "ok"
        stored = {s.id: s.name for s in await store.names.list(GUILD)}
        missing = {i: n for i, n in acked.items() if stored.get(i) != n}
        examples = list(missing.items())[:5]
        assert not missing, f"{len(missing)} acknowledged names lost, e.g. {examples}"
        # Each settings change commits with its audit entry; a killed one leaves neither.
        log = await store.audit.recent(GUILD, limit=None)
        assert len(log) >= acked_toggles
        settings = await store.settings.get(GUILD)
        assert settings.review_required == (log[0].details["review_required"]["to"] if log
                                            else False)
