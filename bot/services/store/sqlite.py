"""The embedded backend: one SQLite file, one aiosqlite connection, WAL.

aiosqlite runs every statement on its own thread, so the event loop never waits for the disk;
an :class:`asyncio.Lock` around every operation serialises them, which gives two guarantees
cheaply: writes never interleave, and a read never sees another coroutine's transaction before
it commits (on a shared connection it otherwise would).

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
import sqlite3
import time
from typing import Any, AsyncIterator, Callable, Iterable, Literal, Sequence

import aiosqlite

from bot.errors import SchemaTooNew, StorageError
from bot.services.store import migrations
from bot.services.store.db import Database, ForeignKeyViolation, IntegrityViolation, Locks, Params, Row, UniqueViolation
from bot.services.store.target import DatabaseTarget

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
Synchronous = Literal["NORMAL", "FULL"]


class SQLiteTx:
    """The statements of one transaction on the shared connection (the lock is already held)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        with _translated():
            return list(await self._db.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Params = ()) -> None:
        with _translated():
            await self._db.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with _translated():
            await self._db.executemany(sql, list(rows))


class SQLiteDatabase(Database):
    """One open SQLite file. Create with ``await SQLiteDatabase.open(target)``."""

    backend = "sqlite"
    no_limit = -1

    def __init__(self, db: aiosqlite.Connection, target: DatabaseTarget, clock: Callable[[], float]) -> None:
        super().__init__(target, clock)
        self._db = db
        self.lock = asyncio.Lock()

    @property
    def path(self):
        return self.target.path

    @classmethod
    async def open(cls, target: DatabaseTarget, *, synchronous: Synchronous = "FULL",
                   clock: Callable[[], float] = time.time) -> "SQLiteDatabase":
        """Open (creating if needed) the file and bring its schema up to date.

        Raises :class:`SchemaTooNew` for a database written by a newer DinoBot, without
        touching it.
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        path = target.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder for the database {path}: {exc.strerror}") from None
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await _configure(db, target, synchronous)
            await _migrate(db)
        except BaseException:
            await db.close()
            raise
        log.info("opened %s (schema v%d, synchronous=%s)", path, migrations.SCHEMA_VERSION, synchronous)
        return cls(db, target, clock)

    async def _close(self) -> None:
        async with self.lock:
            await self._db.close()
        log.info("closed %s", self.path)

    @contextlib.asynccontextmanager
    async def transaction(self, lock: Locks = None) -> AsyncIterator[SQLiteTx]:
        """Hold the lock for one ``BEGIN IMMEDIATE`` ... ``COMMIT``; roll back on any error.

        IMMEDIATE takes SQLite's write lock at the start, so another process cannot slip a
        write between our reads and writes, and busy_timeout (not a late SQLITE_BUSY at
        commit) handles contention; ``lock`` is not needed for that. The rollback is shielded:
        if the caller is cancelled, the statements already queued on aiosqlite's thread still
        run, and the rollback queued after them undoes them before the next operation starts.
        """
        async with self.lock:
            self.check_open()
            try:
                # Inside the try: a cancel while BEGIN is queued must still queue a ROLLBACK.
                await self._db.execute("BEGIN IMMEDIATE")
                yield SQLiteTx(self._db)
                await self._db.execute("COMMIT")
            except BaseException:
                await asyncio.shield(self._rollback())
                raise

    async def write_one(self, sql: str, params: Params = (), lock: Locks = None) -> list[Row]:
        """The statement outside any explicit transaction: SQLite commits it (fsync included,
        under FULL) before it reports done, in one round trip to the database thread instead
        of three (BEGIN, statement, COMMIT)."""
        async with self.lock:
            self.check_open()
            with _translated():
                rows = list(await self._db.execute_fetchall(sql, params))
            if self._db.in_transaction:  # would mean the write is not committed yet
                await self._rollback()
                raise StorageError("a write was left uncommitted; nothing was saved")
            return rows

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one read under the lock, so it never sees another coroutine's open transaction."""
        async with self.lock:
            self.check_open()
            return list(await self._db.execute_fetchall(sql, params))

    async def schema_version(self) -> int:
        async with self.lock:
            return await _user_version(self._db)

    async def sync_identity(self, tx: SQLiteTx, table: str) -> None:
        """Nothing to do: an INTEGER PRIMARY KEY always continues from the largest id."""

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    async def _rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:  # the COMMIT went through before a cancel
            log.debug("rollback after failed operation: %s", exc)


@contextlib.contextmanager
def _translated():
    """sqlite3's IntegrityError as the store's own :class:`IntegrityViolation` kinds."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        code = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
        if code in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY") or "UNIQUE constraint" in str(exc):
            raise UniqueViolation(str(exc)) from exc
        if code == "SQLITE_CONSTRAINT_FOREIGNKEY" or "FOREIGN KEY" in str(exc):
            raise ForeignKeyViolation(str(exc)) from exc
        raise IntegrityViolation(str(exc)) from exc


# ---------------------------------------------------------------------- opening and migrating


async def _configure(db: aiosqlite.Connection, target: DatabaseTarget, synchronous: Synchronous) -> None:
    """Per-connection settings, after making sure the file is not from a newer DinoBot.

    The version check comes first so that a newer database is refused untouched (switching it
    to WAL would already be a change).
    """
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
    found = await _user_version(db)
    if found > migrations.SCHEMA_VERSION:
        raise SchemaTooNew(target.redacted, found, migrations.SCHEMA_VERSION)
    rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
    mode = str(rows[0][0]).lower()
    if mode != "wal":
        raise StorageError(f"{target.path}: SQLite refused WAL mode (got {mode!r}); use a local disk")
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
    for target, script in enumerate(migrations.MIGRATIONS, start=1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await _user_version(db)
            if current >= target:
                await db.execute("ROLLBACK")
                continue
            for statement in migrations.split_statements(script):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {int(target):d}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        log.info("migrated database schema from v%d to v%d", target - 1, target)
