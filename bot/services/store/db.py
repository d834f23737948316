"""What every part of the store relies on, whichever database is behind it.

The parts (submissions, versions, settings, audit, jobs) write their SQL once, in the subset
SQLite and PostgreSQL share: ``?`` (or ``:name``) placeholders, ``INSERT ... RETURNING``,
``ON CONFLICT``, partial indexes. A :class:`Database` runs it:

* :class:`~bot.services.store.sqlite.SQLiteDatabase`: one aiosqlite connection, WAL,
  ``synchronous=FULL``, an asyncio lock around every operation, ``BEGIN IMMEDIATE``.
* :class:`~bot.services.store.postgres.PostgresDatabase`: an asyncpg pool; placeholders become
  ``$n``; a transaction may take an advisory lock on a key (see below).

What differs, the database says: the value ``LIMIT`` takes for "no limit" (:func:`limit_value`),
the schema (each backend has its own migrations, at the same version numbers), the drivers'
errors (both translated into the exceptions below) and, for a copy that keeps ids, moving an
identity sequence past them (:meth:`Database.sync_identity`).

Locks
    A transaction names what it must not interleave with (``lock=lock_key("guild", id)``).
    SQLite ignores the key: ``BEGIN IMMEDIATE`` already takes the one write lock of the file.
    PostgreSQL takes ``pg_advisory_xact_lock(key)`` first, so two transactions about the same
    guild (or the same member's daily limit) run one after the other, in any process of a
    cluster, and read-then-write logic stays as simple as on SQLite; unrelated guilds do not wait.
"""
from __future__ import annotations

import abc
import hashlib
import math
import time
from pathlib import Path
from typing import Any, AsyncContextManager, Callable, Iterable, Mapping, Protocol, Sequence

from bot.errors import DatabaseUnavailable, StorageError
from bot.services.store.target import DatabaseTarget, as_target

Params = Mapping[str, Any] | Sequence[Any]
Locks = int | Sequence[int] | None
Row = Any  # sqlite3.Row or asyncpg.Record: both index by column name and by position

__all__ = ["Database", "DatabaseUnavailable", "ForeignKeyViolation", "IntegrityViolation", "Params", "Row",
           "Tx", "UniqueViolation", "limit_value", "lock_key", "lock_keys", "open_database", "real"]


class IntegrityViolation(Exception):
    """A constraint refused a write (the driver's own exception is the ``__cause__``)."""


class UniqueViolation(IntegrityViolation):
    """A UNIQUE or PRIMARY KEY constraint refused a write."""


class ForeignKeyViolation(IntegrityViolation):
    """A FOREIGN KEY constraint refused a write."""


class Tx(Protocol):
    """The statements of one open transaction (what ``Database.transaction()`` yields)."""

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> None: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


class Database(abc.ABC):
    """One open database. Create with :func:`open_database` (or ``Store.open``)."""

    backend: str
    no_limit: int | None  # what LIMIT takes to mean "no limit" on this backend

    def __init__(self, target: DatabaseTarget, clock: Callable[[], float]) -> None:
        self.target = target
        self._clock = clock
        self._closed = False

    @abc.abstractmethod
    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        """One read, outside any transaction; it never sees another coroutine's uncommitted writes."""

    @abc.abstractmethod
    def transaction(self, lock: Locks = None) -> AsyncContextManager[Tx]:
        """``async with db.transaction(lock=...) as tx``: commit at the end, roll back on any error.

        ``lock``: one key or several (taken in ascending order, so two transactions wanting the
        same keys can never wait for each other in a circle)."""

    @abc.abstractmethod
    async def write_one(self, sql: str, params: Params = (), lock: int | None = None) -> list[Row]:
        """Run one writing statement as its own transaction; return its rows once it is committed."""

    @abc.abstractmethod
    async def schema_version(self) -> int:
        """The migration the database is at."""

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def sync_identity(self, tx: Tx, table: str) -> None:
        """After rows were inserted with explicit ids: make the next generated id follow them."""

    async def close(self) -> None:
        """Wait for work in progress, then close; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._close()

    def check_open(self) -> None:
        if self._closed:
            raise StorageError("the database is closed")

    def now(self) -> float:
        return float(self._clock())


async def open_database(target: "str | Path | DatabaseTarget", *, synchronous: str = "FULL",
                        clock: Callable[[], float] = time.time, pool_size: int = 10) -> Database:
    """Open (creating or migrating as needed) the database ``target`` names.

    Raises :class:`~bot.errors.SchemaTooNew` for a database from a newer DinoBot (untouched),
    :class:`DatabaseUnavailable` when PostgreSQL cannot be reached, and :class:`StorageError`
    with the reason when it refuses us (login, missing database).
    """
    target = as_target(target)
    if target.backend == "postgresql":
        from bot.services.store.postgres import PostgresDatabase

        return await PostgresDatabase.open(target, clock=clock, pool_size=pool_size)
    from bot.services.store.sqlite import SQLiteDatabase

    return await SQLiteDatabase.open(target, synchronous=synchronous, clock=clock)


def lock_key(*parts: object) -> int:
    """A signed 64-bit key for ``pg_advisory_xact_lock`` naming, e.g., ``("guild", 123)``.

    Hashed, so keys of different kinds never meet by construction; a collision would only
    make two unrelated writes wait for each other, never break one.
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(lock: Locks) -> list[int]:
    """The keys of ``lock`` in the order a transaction takes them (ascending, no repeats)."""
    if lock is None:
        return []
    return sorted({lock} if isinstance(lock, int) else set(lock))


def limit_value(db: Database, limit: int | None) -> int | None:
    """``limit`` for a bound ``LIMIT ?``: None means no limit (-1 on SQLite, NULL on PostgreSQL)."""
    return db.no_limit if limit is None else max(0, int(limit))


def real(value: float | None) -> float | None:
    """Losses as plain floats; NaN becomes NULL explicitly (SQLite would do it silently)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value

