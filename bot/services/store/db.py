"""The SQLite connection every part of the store shares: opening, migrating, transactions.

One SQLite file, one :mod:`aiosqlite` connection. aiosqlite runs every statement on its own
thread, so the event loop never waits for the disk; an :class:`asyncio.Lock` around every
operation serialises them, which gives two guarantees cheaply: writes never interleave, and a
read never sees another coroutine's transaction before it commits (on a shared connection it
otherwise would).

Durability
    The database runs in WAL mode with ``synchronous=FULL`` by default. In WAL mode NORMAL
    already survives a crash of the *process* (kill -9 included): a committed transaction is in
    the WAL file in the OS page cache, and the kernel writes it out. Only a power loss or kernel
    panic can lose the last transactions. FULL also fsyncs the WAL at every commit, so a
    submission we acknowledged survives a power cut too. Acknowledging a name to a member is a
    promise, and ``benchmarks/bench_store.py`` measures FULL well above the submissions/s target
    (README), so FULL is the default; ``synchronous="NORMAL"`` remains available for disks where
    fsync is slow.

Time
    Every timestamp is unix seconds as a float (UTC by definition), taken from an injectable
    ``clock`` so tests can move time.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sqlite3
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Literal, Mapping

import aiosqlite

from bot.errors import SchemaTooNew, StorageError
from bot.services.store.migrations import MIGRATIONS, SCHEMA_VERSION, split_statements

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
Synchronous = Literal["NORMAL", "FULL"]
Row = sqlite3.Row


class Database:
    """One open SQLite file: a lock, transactions and reads. Create with ``await Database.open``."""

    def __init__(self, db: aiosqlite.Connection, path: Path, clock: Callable[[], float]) -> None:
        self._db = db
        self.lock = asyncio.Lock()
        self._closed = False
        self.path = path
        self._clock = clock

    @classmethod
    async def open(cls, path: str | Path, *, synchronous: Synchronous = "FULL",
                   clock: Callable[[], float] = time.time) -> "Database":
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        Raises :class:`SchemaTooNew` for a database written by a newer DinoBot, without
        touching it.
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await _configure(db, path, synchronous)
            await _migrate(db)
        except BaseException:
            await db.close()
            raise
        log.info("opened %s (schema v%d, synchronous=%s)", path, SCHEMA_VERSION, synchronous)
        return cls(db, path, clock)

    async def close(self) -> None:
        """Wait for the operation in progress, then close; closing twice is harmless."""
        async with self.lock:
            if self._closed:
                return
            self._closed = True
            await self._db.close()
        log.info("closed %s", self.path)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock for one ``BEGIN IMMEDIATE`` ... ``COMMIT``; roll back on any error.

        IMMEDIATE takes SQLite's write lock at the start, so another process cannot slip a
        write between our reads and writes, and busy_timeout (not a late SQLITE_BUSY at
        commit) handles contention. The rollback is shielded: if the caller is cancelled, the
        statements already queued on aiosqlite's thread still run, and the rollback queued
        after them undoes them before the next operation can start.
        """
        async with self.lock:
            self.check_open()
            try:
                # Inside the try: a cancel while BEGIN is queued must still queue a ROLLBACK.
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                await asyncio.shield(self.rollback())
                raise

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosqlite.Connection]:
        """The raw connection under the lock, for a statement SQLite commits on its own."""
        async with self.lock:
            self.check_open()
            yield self._db

    async def rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:  # the COMMIT went through before a cancel
            log.debug("rollback after failed operation: %s", exc)

    async def fetch(self, sql: str, params: Mapping[str, Any] | tuple = ()) -> list[sqlite3.Row]:
        """Run one read under the lock, so it never sees another coroutine's open transaction."""
        async with self.lock:
            self.check_open()
            return list(await self._db.execute_fetchall(sql, params))

    def check_open(self) -> None:
        if self._closed:
            raise StorageError("the database is closed")

    def now(self) -> float:
        return float(self._clock())


# ---------------------------------------------------------------------- opening and migrating


async def _configure(db: aiosqlite.Connection, path: Path, synchronous: Synchronous) -> None:
    """Per-connection settings, after making sure the file is not from a newer DinoBot.

    The version check comes first so that a newer database is refused untouched (switching it
    to WAL would already be a change).
    """
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
    found = await _user_version(db)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(str(path), found, SCHEMA_VERSION)
    rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
    mode = str(rows[0][0]).lower()
    if mode != "wal":
        raise StorageError(f"{path}: SQLite refused WAL mode (got {mode!r}); use a local disk")
    # PRAGMA takes no bound parameters; both values are checked constants.
    await db.execute(f"PRAGMA synchronous = {synchronous}")
    await db.execute("PRAGMA foreign_keys = ON")


async def _user_version(db: aiosqlite.Connection) -> int:
    rows = await db.execute_fetchall("PRAGMA user_version")
    return int(rows[0][0])


async def _migrate(db: aiosqlite.Connection) -> None:
    """Apply the missing migrations, each with its ``user_version`` bump in one transaction.

    The version is re-read inside the write lock, so two processes opening the same file
    at once cannot both apply a migration.
    """
    for target, script in enumerate(MIGRATIONS, start=1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await _user_version(db)
            if current >= target:
                await db.execute("ROLLBACK")
                continue
            for statement in split_statements(script):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {int(target):d}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        log.info("migrated database schema from v%d to v%d", target - 1, target)


# ---------------------------------------------------------------------- helpers for the parts


def is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    code = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if code is not None:
        return code in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
    return "UNIQUE constraint failed" in str(exc)


def sql_limit(limit: int | None) -> int:
    """SQLite's LIMIT -1 means no limit."""
    return -1 if limit is None else max(0, int(limit))


def real(value: float | None) -> float | None:
    """Losses as plain floats; NaN becomes NULL explicitly (SQLite would do it silently)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
