"""The PostgreSQL fixture proves itself: a real server on 127.0.0.1, a fresh database per test.

These run against the throwaway cluster from ``tests/support/postgres.py``; where no server can
run they skip (and under ``CI=true`` fail, which the last tests check without a server).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.support import postgres as pg

#: Database names seen by the isolation tests, to prove each got its own.
_seen_databases: set[str] = set()


async def test_round_trip_with_bound_parameters(postgres_url: str) -> None:
    assert postgres_url.startswith(f"postgresql://{pg.USER}@127.0.0.1:")
    connection = await asyncpg.connect(postgres_url)
    try:
        assert str(await connection.fetchval("SELECT inet_server_addr()")) == "127.0.0.1"
        await connection.execute("CREATE TABLE names (id bigserial PRIMARY KEY, guild bigint NOT NULL, name text)")
        async with connection.transaction():
            await connection.executemany(
                "INSERT INTO names (guild, name) VALUES ($1, $2)",
                [(1000, "tyrannosaurus"), (2000, "o'brienosaurus"), (1000, "raptor")],
            )
        rows = await connection.fetch("SELECT name FROM names WHERE guild = $1 ORDER BY id", 1000)
        assert [row["name"] for row in rows] == ["tyrannosaurus", "raptor"]
        assert await connection.fetchval("SELECT name FROM names WHERE guild = $1", 2000) == "o'brienosaurus"
    finally:
        await connection.close()

    # Committed means visible to a new connection (what "acknowledged after commit" relies on).
    again = await asyncpg.connect(postgres_url)
    try:
        assert await again.fetchval("SELECT count(*) FROM names") == 3
    finally:
        await again.close()


async def test_server_keeps_default_durability_and_listens_on_loopback_only(postgres: pg.PostgresServer) -> None:
    connection = await asyncpg.connect(postgres.url())
    try:
        assert await connection.fetchval("SHOW fsync") == "on"
        assert await connection.fetchval("SHOW synchronous_commit") == "on"
        assert await connection.fetchval("SHOW listen_addresses") == "127.0.0.1"
        assert connection.get_server_version().major >= 13  # DROP DATABASE ... WITH (FORCE)
    finally:
        await connection.close()
    # The unix socket lives in the throwaway folder, not in the machine's /var/run/postgresql.
    assert (postgres.root / f".s.PGSQL.{postgres.port}").is_socket()


@pytest.mark.parametrize("which", ["first", "second"])
async def test_each_test_gets_its_own_empty_database(postgres_url: str, which: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        database = await connection.fetchval("SELECT current_database()")
        assert database not in _seen_databases
        _seen_databases.add(database)
        assert await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        # Without IF NOT EXISTS: a database shared with the other run would already have it.
        await connection.execute("CREATE TABLE isolation_probe (which text)")
        await connection.execute("INSERT INTO isolation_probe VALUES ($1)", which)
    finally:
        await connection.close()


async def test_a_database_is_dropped_after_use_even_with_a_session_left_open(postgres: pg.PostgresServer) -> None:
    async with postgres.database() as url:
        name = url.rsplit("/", 1)[1]
        lingering = await asyncpg.connect(url)  # a killed bot's session would look like this
    admin = await asyncpg.connect(postgres.url())
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await admin.close()
    assert not await _still_usable(lingering)


async def _still_usable(connection: asyncpg.Connection) -> bool:
    try:
        await connection.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return False
    finally:
        await connection.close()
    return True


def test_database_names_are_checked_before_they_reach_sql() -> None:
    with pytest.raises(ValueError, match="letters, digits or underscores"):
        pg._checked_name('x"; DROP DATABASE postgres; --')


# -- where the server is missing: skip locally, fail under CI (no server needed) --------------------


def test_missing_binaries_name_the_places_searched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(pg.BINDIR_ENV, str(tmp_path))
    with pytest.raises(pg.PostgresUnavailable, match="initdb, pg_ctl.*apt-get install postgresql-15") as caught:
        pg.find_bindir()
    assert str(tmp_path) in str(caught.value)


def test_missing_server_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL not available: no binaries"):
        pg.unavailable("no binaries")


def test_missing_server_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but PostgreSQL cannot run: no binaries"):
        pg.unavailable("no binaries")
