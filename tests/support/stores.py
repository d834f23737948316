"""Running the store's tests on both backends, and looking at a database from outside the store.

``db_target`` (a fixture, parametrised ``sqlite`` / ``postgresql``) is what ``Store.open`` takes:
a fresh SQLite file in the test's folder, or a fresh, empty schema in the session's throwaway
PostgreSQL cluster (``tests/support/postgres.py``; skipped without the server, failed under
``CI=true``). ``pg_url`` is that PostgreSQL URL on its own: the schema is chosen with
``?search_path=...``, which asyncpg sends as a server setting, so the store, a child process
and the raw driver all see just that schema. A schema costs milliseconds where a database per
test (``postgres_url``) costs a few hundred, and the store's tests use dozens.

:class:`RawDB` reads with the plain drivers (``sqlite3``, one asyncpg connection), so a test
checks what is really stored rather than what the store says, and :meth:`RawDB.integrity`
runs each engine's own consistency checks: ``PRAGMA integrity_check`` plus the foreign-key check
on SQLite, ``amcheck`` (every B-tree index against its table, and the tables' heap pages) on
PostgreSQL, where the foreign keys themselves are always enforced.
"""
from __future__ import annotations

import itertools
import sqlite3
import uuid
from typing import Any, AsyncIterator, Iterator

import asyncpg
import pytest

from bot.services.store import DatabaseTarget
from bot.services.store.postgres import bind
from tests.support.postgres import PostgresServer, remove_cluster, start_cluster

BACKENDS = ("sqlite", "postgresql")
TABLES = ("submissions", "model_versions", "model_checkpoints", "guild_settings", "audit_log", "training_jobs")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


_schemas = itertools.count(1)


@pytest.fixture
async def pg_url(postgres) -> AsyncIterator[str]:
    """``postgresql://...?search_path=s...``: an empty schema of the cluster, dropped afterwards."""
    schema = f"s{next(_schemas)}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres.url())
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')  # a checked, generated name
        yield f"{postgres.url()}?search_path={schema}"
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def crashable_postgres(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """A second throwaway cluster that tests crash (``stop()`` is ``pg_ctl stop -m immediate``:
    no checkpoint, crash recovery at the next start) and restart, so the session's main cluster
    stays untouched. Each test makes its own database in it."""
    server = start_cluster(postgres.bindir)
    try:
        yield server
    finally:
        remove_cluster(server)


@pytest.fixture
def db_target(backend: str, tmp_path, request: pytest.FixtureRequest) -> DatabaseTarget:
    if backend == "sqlite":
        return DatabaseTarget.sqlite(tmp_path / "state" / "dinobot.sqlite3")
    return DatabaseTarget("postgresql", request.getfixturevalue("pg_url"))


class RawDB:
    """A database seen from outside the store; ``?`` placeholders on both backends."""

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self._pg: asyncpg.Connection | None = None  # kept for rows(); each read is its own transaction

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
            self._pg = None

    @property
    def is_postgres(self) -> bool:
        return self.target.backend == "postgresql"

    async def rows(self, sql: str, params: tuple = ()) -> list[tuple[Any, ...]]:
        if not self.is_postgres:
            con = sqlite3.connect(self.target.path)
            try:
                rows = con.execute(sql, params).fetchall()
                con.commit()  # a test's own UPDATE (tampering) must stick
                return rows
            finally:
                con.close()
        text, args = bind(sql, params)
        if self._pg is None or self._pg.is_closed():
            self._pg = await asyncpg.connect(self.target.location)
        return [tuple(r) for r in await self._pg.fetch(text, *args)]

    async def execute(self, script: str) -> None:
        """Run statements as they are (schema surgery for the migration tests)."""
        if not self.is_postgres:
            self.target.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.target.path)
            try:
                con.executescript(script)
                con.commit()
            finally:
                con.close()
            return
        con = await asyncpg.connect(self.target.location)
        try:
            await con.execute(script)
        finally:
            await con.close()

    async def tables(self) -> set[str]:
        if not self.is_postgres:
            return {r[0] for r in await self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {r[0] for r in await self.rows(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    async def columns(self) -> dict[str, list[tuple[str, bool]]]:
        """Every table's columns in order, each with whether it may be NULL (bookkeeping tables out)."""
        if not self.is_postgres:
            found = {}
            for table in await self.tables() - {"sqlite_sequence"}:
                info = await self.rows(f"PRAGMA table_info({table})")
                found[table] = [(name, not notnull and not pk) for _, name, _, notnull, _, pk in info]
            return found
        rows = await self.rows(
            "SELECT table_name, column_name, is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name <> 'dinobot_schema' "
            "ORDER BY table_name, ordinal_position")
        found: dict[str, list[tuple[str, bool]]] = {}
        for table, name, nullable in rows:
            found.setdefault(table, []).append((name, nullable))
        return found

    async def schema_version(self) -> int:
        if not self.is_postgres:
            return (await self.rows("PRAGMA user_version"))[0][0]
        return (await self.rows("SELECT COALESCE(max(version), 0) FROM dinobot_schema"))[0][0]

    async def integrity(self) -> str:
        """"ok", or every problem each engine's own checks found."""
        if not self.is_postgres:
            return sqlite_integrity(self.target.path)
        con = await asyncpg.connect(self.target.location)
        try:
            await con.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            problems = []
            for index in await con.fetch(_BTREE_INDEXES):
                try:  # the index is well formed and holds every row of its table (heapallindexed)
                    await con.execute("SELECT bt_index_check($1::regclass, true)", index[0])
                except asyncpg.PostgresError as exc:
                    problems.append(f"index {index[0]}: {exc}")
            for table in await con.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"):
                problems += [f"{table[0]} block {r['blkno']}: {r['msg']}" for r in await con.fetch(
                    "SELECT blkno, msg FROM verify_heapam($1::regclass)", table[0])]
        finally:
            await con.close()
        return "\n".join(problems) or "ok"


_BTREE_INDEXES = """
SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.amname = 'btree' AND n.nspname = current_schema()
"""


def sqlite_integrity(path) -> str:
    """``PRAGMA integrity_check`` plus a foreign-key check: "ok" when all is well."""
    con = sqlite3.connect(path)
    try:
        problems = [r[0] for r in con.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key violation in {r[0]} row {r[1]} -> {r[2]}"
                     for r in con.execute("PRAGMA foreign_key_check")]
    finally:
        con.close()
    return "\n".join(problems) or "ok"
