"""kill -9 in the middle of a burst of writes loses nothing that was acknowledged, on both backends.

A child process opens the store and submits names from several concurrent tasks (plus a task
toggling a guild setting, for multi-statement transactions), printing each result only after
the store call returned. The test SIGKILLs it mid-burst, several times over the same database,
then reopens: every acknowledged write must be there and the database must pass its engine's
integrity checks (SQLite: no file but the database and its WAL/SHM left either).

On PostgreSQL the database server can die too: the last test crashes it (``pg_ctl stop -m
immediate``: no checkpoint, crash recovery at the next start) in the middle of a burst, while the
child keeps going. Writes in flight fail with ``DatabaseUnavailable`` and are not acknowledged;
once the server is back, the same child's pool reconnects and acknowledged writes continue.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bot.services.store import DatabaseTarget, Store
from tests.support.stores import RawDB

REPO = Path(__file__).resolve().parents[2]
GUILD = 4242

CHILD = r"""
import asyncio, itertools, sys
from bot.errors import DatabaseUnavailable
from bot.services.store import Store
from tests.support.child_output import say
from tests.support.name_factory import letters

async def main(target, prefix, synchronous):
    store = await Store.open(target, daily_limit=None, synchronous=synchronous)
    counter = itertools.count()

    async def submitter():
        while True:
            i = next(counter)
            try:
                sub = await store.names.submit(GUILD, 10_000 + i, prefix + letters(i))
            except DatabaseUnavailable:
                say("U")
                await asyncio.sleep(0.05)
                continue
            say("N", sub.id, sub.name)  # only after submit returned

    async def toggler():
        for i in itertools.count():
            try:
                current = await store.settings.get(GUILD)
                await store.settings.update(GUILD, 1, review_required=not current.review_required)
            except DatabaseUnavailable:
                await asyncio.sleep(0.05)
                continue
            say("S", i)

    say("READY")
    await asyncio.gather(*(submitter() for _ in range(4)), toggler())

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
""".replace("GUILD", str(GUILD))


class Child:
    """The child process and what it acknowledged, read line by line from its stdout."""

    def __init__(self, target: DatabaseTarget, prefix: str, synchronous: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, target.location, prefix, synchronous],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
        self.names: dict[int, str] = {}
        self.toggles = 0
        self.unavailable = 0

    def read_until(self, done, *, kill: bool = False) -> None:
        """Read acks until ``done(self)`` holds; with ``kill``, SIGKILL then and read to EOF.

        Lines still in the pipe after the kill were printed before it, so they count as
        acknowledged too.
        """
        watchdog = threading.Timer(60, self.proc.kill)  # never hang the suite on a stuck child
        watchdog.start()
        try:
            for line in self.proc.stdout:
                kind, *rest = line.split()
                if kind == "N":
                    self.names[int(rest[0])] = rest[1]
                elif kind == "S":
                    self.toggles += 1
                elif kind == "U":
                    self.unavailable += 1
                if done(self):
                    if not kill:
                        return
                    os.kill(self.proc.pid, signal.SIGKILL)
                    break
            for line in self.proc.stdout:  # to EOF
                kind, *rest = line.split()
                if kind == "N":
                    self.names[int(rest[0])] = rest[1]
                elif kind == "S":
                    self.toggles += 1
            stderr = self.proc.stderr.read()
            self.proc.wait()
        finally:
            watchdog.cancel()
        assert self.proc.returncode == -signal.SIGKILL, f"child ended on its own:\n{stderr}"


def run_and_kill(target: DatabaseTarget, prefix: str, synchronous: str, kill_after: int) -> tuple[dict, int]:
    """Run the child until it acknowledged ``kill_after`` names, SIGKILL it, collect its acks."""
    child = Child(target, prefix, synchronous)
    child.read_until(lambda c: len(c.names) >= kill_after, kill=True)
    return child.names, child.toggles


async def test_acknowledged_writes_survive_sigkill(db_target: DatabaseTarget, tmp_path: Path) -> None:
    acked: dict[int, str] = {}
    acked_toggles = 0
    rounds = [("alpha", "FULL", 150), ("beta", "NORMAL", 400), ("gamma", "FULL", 40), ("delta", "NORMAL", 250)]
    for prefix, synchronous, kill_after in rounds:
        names, toggles = await asyncio.to_thread(run_and_kill, db_target, prefix, synchronous, kill_after)
        acked.update(names)
        acked_toggles += toggles
        if db_target.backend == "sqlite":
            db = db_target.path
            left = {p.name for p in db.parent.iterdir()}
            assert left <= {db.name, db.name + "-wal", db.name + "-shm"}, left
        await check_store(db_target, acked, acked_toggles)


async def check_store(target: DatabaseTarget, acked: dict[int, str], acked_toggles: int) -> None:
    raw = RawDB(target)
    try:
        assert await raw.integrity() == "ok"
    finally:
        await raw.close()
    async with await Store.open(target) as store:
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


async def test_acknowledged_writes_survive_a_postgres_crash_and_the_store_reconnects(crashable_postgres) -> None:
    server = crashable_postgres
    async with server.database() as url:
        target = DatabaseTarget("postgresql", url)
        async with await Store.open(target):
            pass  # migrated before the child starts, so the crash hits writes, not the schema
        child = Child(target, "omega", "FULL")
        await asyncio.to_thread(child.read_until, lambda c: len(c.names) >= 150)
        await asyncio.to_thread(server.stop)  # SIGQUIT: an immediate shutdown, recovery at start
        before_crash = len(child.names)
        await asyncio.to_thread(child.read_until, lambda c: c.unavailable >= 8)
        started = time.perf_counter()
        assert await asyncio.to_thread(server.start), "the cluster did not come back on its port"
        await asyncio.to_thread(child.read_until, lambda c: len(c.names) >= before_crash + 100, kill=True)
        assert time.perf_counter() - started < 30
        await check_store(target, child.names, child.toggles)

