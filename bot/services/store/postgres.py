"""The shared backend: PostgreSQL through an asyncpg connection pool.

The parts' SQL arrives with ``?`` or ``:name`` placeholders and leaves as ``$1, $2, ...``
(:func:`to_numbered`, cached per statement); values are always bound, never formatted in.

Durability is PostgreSQL's: ``COMMIT`` returns once the WAL record is flushed (the server's
default ``synchronous_commit=on``), and only then does a method return, so an acknowledged
submission survives the bot process and the database server being killed.

When the server goes away (restart, failover, network), every operation raises
:class:`~bot.errors.DatabaseUnavailable` at once instead of hanging, which the Discord layer
turns into an apology; nothing half-done is acknowledged. The pool replaces broken connections
on its own, and a read or a ``BEGIN`` that fails on a connection the pool still held from
before the outage is tried once more on a fresh one, so the first request after the database
is back works. One warning is logged when the database goes away and one line when it is back.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from typing import Any, AsyncIterator, Callable, Iterable, Sequence

import asyncpg

from bot.errors import DatabaseUnavailable, SchemaTooNew, StorageError
from bot.services.store import pg_migrations
from bot.services.store.db import (
    Database,
    ForeignKeyViolation,
    IntegrityViolation,
    Locks,
    Params,
    Row,
    UniqueViolation,
    lock_key,
    lock_keys,
)
from bot.services.store.target import DatabaseTarget

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.5  # seconds to open one connection: an interaction must be answered within 3 s
COMMAND_TIMEOUT = 60.0  # seconds any statement may take before it counts as the database being gone
ACQUIRE_TIMEOUT = 15.0  # seconds to wait for a free pooled connection
MIGRATION_LOCK = lock_key("dinobot", "migrations")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTITY_TABLES = ("model_versions", "submissions", "audit_log", "training_jobs", "keeps")  # constant names only


class PostgresTx:
    """The statements of one open transaction on one pooled connection."""

    def __init__(self, db: "PostgresDatabase", conn: asyncpg.Connection) -> None:
        self._db = db
        self._conn = conn

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        text, args = bind(sql, params)
        with self._db.translated():
            return await self._conn.fetch(text, *args)

    async def execute(self, sql: str, params: Params = ()) -> None:
        text, args = bind(sql, params)
        with self._db.translated():
            await self._conn.execute(text, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        text, names = to_numbered(sql)
        if names:
            raise ValueError("executemany takes positional (?) placeholders")
        with self._db.translated():
            await self._conn.executemany(text, [tuple(row) for row in rows])


class PostgresDatabase(Database):
    """A PostgreSQL database behind a pool. Create with ``await PostgresDatabase.open(target)``."""

    backend = "postgresql"
    no_limit = None

    def __init__(self, pool: asyncpg.Pool, target: DatabaseTarget, clock: Callable[[], float]) -> None:
        super().__init__(target, clock)
        self._pool = pool
        self._reachable = True

    @classmethod
    async def open(cls, target: DatabaseTarget, *, clock: Callable[[], float] = time.time,
                   pool_size: int = 10) -> "PostgresDatabase":
        """Connect (failing within ``CONNECT_TIMEOUT`` if the server cannot be reached) and migrate."""
        try:
            pool = await asyncpg.create_pool(
                target.location, min_size=1, max_size=pool_size, timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT, max_inactive_connection_lifetime=300.0)
        except Exception as exc:
            raise _opening_error(target, exc) from None
        db = cls(pool, target, clock)
        try:
            await db._migrate()
        except BaseException:
            pool.terminate()
            raise
        log.info("opened PostgreSQL %s (schema v%d, pool of up to %d connections)", target.redacted,
                 pg_migrations.SCHEMA_VERSION, pool_size)
        return db

    async def _close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), timeout=10)
        except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._pool.terminate()
        log.info("closed PostgreSQL %s", self.target.redacted)

    # ------------------------------------------------------------------ operations

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        text, args = bind(sql, params)
        for attempt in (1, 2):
            self.check_open()
            try:
                with self.translated():
                    rows = await self._pool.fetch(text, *args, timeout=COMMAND_TIMEOUT)
            except DatabaseUnavailable:
                if attempt == 2:
                    raise
                continue  # a connection left over from before an outage: the pool replaced it
            self._back()
            return rows
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.asynccontextmanager
    async def transaction(self, lock: Locks = None) -> AsyncIterator[PostgresTx]:
        """``BEGIN`` ... ``COMMIT`` on one pooled connection, after ``pg_advisory_xact_lock`` of
        each key of ``lock`` (ascending).

        Any error (a cancel included) rolls back; a connection that cannot even roll back is
        terminated rather than returned to the pool half-way through a transaction.
        """
        conn, tx = await self._begin()
        try:
            try:
                for key in lock_keys(lock):
                    with self.translated():
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
                yield PostgresTx(self, conn)
                with self.translated():
                    await tx.commit()
            except BaseException:
                await asyncio.shield(_abort(conn, tx))
                raise
        finally:
            await self._release(conn)
        self._back()

    async def write_one(self, sql: str, params: Params = (), lock: Locks = None) -> list[Row]:
        async with self.transaction(lock) as tx:
            return await tx.fetch(sql, params)

    async def schema_version(self) -> int:
        self.check_open()
        with self.translated():
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                return await _version(conn)

    async def sync_identity(self, tx: PostgresTx, table: str) -> None:
        """Move ``table``'s identity sequence past the largest id (after a copy kept the ids)."""
        if table not in _IDENTITY_TABLES:
            return
        await tx.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                         f" GREATEST((SELECT max(id) FROM {table}), 1), (SELECT count(*) > 0 FROM {table}))")

    async def _begin(self) -> tuple[asyncpg.Connection, Any]:
        """A pooled connection with a transaction started; a stale connection gets one retry."""
        for attempt in (1, 2):
            self.check_open()
            with self.translated():
                conn = await self._pool.acquire(timeout=ACQUIRE_TIMEOUT)
            tx = conn.transaction()
            try:
                with self.translated():
                    await tx.start()
                return conn, tx
            except BaseException as exc:
                await self._release(conn)
                if attempt == 2 or not isinstance(exc, DatabaseUnavailable):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _release(self, conn: asyncpg.Connection) -> None:
        """Return a connection to the pool; one lost with the server is simply dropped (asyncpg
        terminates it when its reset fails), which must not fail an operation already done."""
        try:
            await self._pool.release(conn)
        except Exception as exc:
            if not (is_connection_error(exc) or isinstance(exc, asyncpg.InterfaceError)):
                raise
            log.debug("dropped a broken connection: %s", exc)

    # ------------------------------------------------------------------ errors and health

    @contextlib.contextmanager
    def translated(self):
        """asyncpg's errors as the store's: constraint kinds, and a lost server as unavailable."""
        try:
            yield
        except asyncpg.UniqueViolationError as exc:
            raise UniqueViolation(str(exc)) from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise ForeignKeyViolation(str(exc)) from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self._gone(exc)
            raise DatabaseUnavailable(f"PostgreSQL {self.target.redacted} is unreachable: "
                                      f"{_reason(exc)}") from exc

    def _gone(self, exc: BaseException) -> None:
        if self._reachable:
            self._reachable = False
            log.warning("lost PostgreSQL %s (%s); members get an apology until it is back",
                        self.target.redacted, _reason(exc))

    def _back(self) -> None:
        if not self._reachable:
            self._reachable = True
            log.warning("PostgreSQL %s is reachable again", self.target.redacted)

    # ------------------------------------------------------------------ migrations

    async def _migrate(self) -> None:
        """Apply the missing migrations, each with its version row in one transaction.

        An advisory lock serialises processes starting at once: the second waits, re-reads the
        version inside the lock and finds nothing left to do. A database from a newer DinoBot
        is refused before anything is written.
        """
        with self.translated():
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                found = await _version(conn)
                if found > pg_migrations.SCHEMA_VERSION:
                    raise SchemaTooNew(self.target.redacted, found, pg_migrations.SCHEMA_VERSION)
                for target, script in enumerate(pg_migrations.MIGRATIONS, start=1):
                    if found >= target:
                        continue
                    if await _apply(conn, target, script):
                        log.info("migrated database schema from v%d to v%d", target - 1, target)


async def _apply(conn: asyncpg.Connection, target: int, script: str) -> bool:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(f"CREATE TABLE IF NOT EXISTS {pg_migrations.VERSION_TABLE} ("
                           " version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
        if await _version(conn) >= target:
            return False  # another process applied it while we waited for the lock
        await conn.execute(script)  # no arguments: the simple protocol runs every statement
        await conn.execute(f"INSERT INTO {pg_migrations.VERSION_TABLE} (version, applied_at) VALUES ($1, $2)",
                           target, time.time())
    return True


async def _version(conn: asyncpg.Connection) -> int:
    if await conn.fetchval("SELECT to_regclass($1)", pg_migrations.VERSION_TABLE) is None:
        return 0
    return int(await conn.fetchval(f"SELECT COALESCE(max(version), 0) FROM {pg_migrations.VERSION_TABLE}"))


async def _abort(conn: asyncpg.Connection, tx: Any) -> None:
    """Roll back; a connection that cannot (stuck, or already lost and taken back by the pool,
    whose proxy then refuses every call) is terminated, never reused mid-transaction."""
    try:
        await asyncio.wait_for(tx.rollback(), timeout=5)
    except Exception:
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.terminate()


# ---------------------------------------------------------------------- placeholders


@functools.lru_cache(maxsize=1024)
def to_numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``?`` and ``:name`` placeholders as ``$n``; also the names, in ``$n`` order (empty for ``?``).

    Quoted strings, quoted identifiers, ``--`` comments and ``::`` casts are left alone. One
    statement uses one style; a ``:name`` used twice is one parameter.
    """
    out: list[str] = []
    names: dict[str, int] = {}
    positional = 0
    i = 0
    while i < len(sql):
        char = sql[i]
        if char in "'\"":
            end = sql.find(char, i + 1)
            end = len(sql) - 1 if end < 0 else end
            out.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif char == "?":
            positional += 1
            out.append(f"${positional}")
            i += 1
        elif char == ":" and (match := _NAME.match(sql, i + 1)) and (i == 0 or sql[i - 1] != ":"):
            number = names.setdefault(match.group(), len(names) + 1)
            out.append(f"${number}")
            i = match.end()
        else:
            out.append(char)
            i += 1
    if positional and names:
        raise ValueError(f"a statement mixes ? and :name placeholders: {sql!r}")
    return "".join(out), tuple(names)


def bind(sql: str, params: Params) -> tuple[str, list[Any]]:
    """The statement for asyncpg and its arguments in ``$n`` order."""
    text, names = to_numbered(sql)
    if names:
        if not isinstance(params, dict):
            raise TypeError("a statement with :name placeholders takes a dict of parameters")
        return text, [params[name] for name in names]
    return text, list(params)


# ---------------------------------------------------------------------- errors


def is_connection_error(exc: BaseException) -> bool:
    """True for "the server is not there" (refused, reset, shut down, timed out), not for bugs."""
    if isinstance(exc, (OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError,
                        asyncpg.exceptions.OperatorInterventionError,
                        asyncpg.exceptions.ConnectionDoesNotExistError)):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


def _opening_error(target: DatabaseTarget, exc: Exception) -> StorageError:
    """One sentence an operator can act on, for why the database could not be opened."""
    where = target.redacted
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return StorageError(f"PostgreSQL refused the login for {where}: {_reason(exc)}")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StorageError(f"{_reason(exc)} on the server of {where}; create it first "
                            f"(createdb, or CREATE DATABASE) or fix DINOBOT_DATABASE_URL")
    if is_connection_error(exc):
        return DatabaseUnavailable(f"cannot reach PostgreSQL at {where}: {_reason(exc)}")
    if isinstance(exc, ValueError | asyncpg.InterfaceError):
        return StorageError(f"DINOBOT_DATABASE_URL {where} is not usable: {_reason(exc)}")
    return StorageError(f"PostgreSQL at {where} could not be opened: {_reason(exc)}")
