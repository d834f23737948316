"""A throwaway PostgreSQL cluster for the test session, and an empty database for each test.

The cluster is real (Debian's ``postgresql-15`` server binaries), lives in a temporary folder,
listens on 127.0.0.1 only (and on a unix socket inside that folder), and is stopped and removed
when the session ends, also after a failure. Nothing touches the machine's own clusters.

* ``postgres`` (session): the running :class:`PostgresServer`. Started on first use only, so a
  run that needs no PostgreSQL pays nothing.
* ``postgres_url`` (per test): ``postgresql://dinobot@127.0.0.1:PORT/DB`` of a fresh, empty
  database (``CREATE DATABASE ... TEMPLATE template0``), dropped after the test.

Where the server binaries are missing the tests are skipped with the reason, except under CI
(``CI=true``): there they must run, so the fixture fails loudly instead (``.ci/run`` installs the
package). PostgreSQL refuses to run as root; as root, ``initdb`` and ``pg_ctl`` run as the
``postgres`` system user through ``runuser`` and the folder is handed to that user.

Durability settings are left at PostgreSQL's defaults (``fsync=on``), so crash tests see what
production would. Only ``initdb --no-sync`` skips flushing the freshly created template files:
they matter if the machine loses power, which a test run never survives anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Iterator, List, NoReturn, Optional

import pytest

log = logging.getLogger("tests.postgres")

#: The superuser the throwaway cluster is created with (and the user in every URL).
USER = "dinobot"
HOST = "127.0.0.1"
#: Points at a folder holding ``initdb`` and ``pg_ctl`` when they are somewhere unusual.
BINDIR_ENV = "DINOBOT_TEST_PG_BINDIR"
#: The Debian layout the project's machines use; other installed versions are tried after it.
DEBIAN_ROOT = Path("/usr/lib/postgresql")
PREFERRED_VERSION = "15"
#: The unprivileged account that runs the server when the tests run as root.
SYSTEM_USER = "postgres"
START_TIMEOUT = 60
START_ATTEMPTS = 3
_TOOLS = ("initdb", "pg_ctl")


class PostgresUnavailable(Exception):
    """The server cannot be started here (no binaries, or root without a ``postgres`` account)."""


# -- finding the binaries -----------------------------------------------------------------------


def _has_tools(folder: Path) -> bool:
    return all(os.access(folder / tool, os.X_OK) for tool in _TOOLS)


def _pg_config_bindir() -> Optional[Path]:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip())


def candidate_bindirs() -> List[Path]:
    """Where ``initdb``/``pg_ctl`` may be, best first: the override, ``pg_config``, Debian's folders.

    ``pg_config`` alone is not enough: on Debian it can come from ``libpq-dev`` without the server.
    """
    candidates: List[Path] = []
    override = os.environ.get(BINDIR_ENV, "").strip()
    if override:
        return [Path(override)]  # an explicit choice is never second-guessed
    from_pg_config = _pg_config_bindir()
    if from_pg_config is not None:
        candidates.append(from_pg_config)
    candidates.append(DEBIAN_ROOT / PREFERRED_VERSION / "bin")
    if DEBIAN_ROOT.is_dir():
        versions = sorted((p for p in DEBIAN_ROOT.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name))
        candidates.extend(p / "bin" for p in versions)
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).parent)
    return list(dict.fromkeys(candidates))


def find_bindir() -> Path:
    """The folder with the PostgreSQL server tools, or :class:`PostgresUnavailable` saying where we looked."""
    candidates = candidate_bindirs()
    for folder in candidates:
        if _has_tools(folder):
            return folder
    looked = ", ".join(str(folder) for folder in candidates) or "nowhere"
    raise PostgresUnavailable(
        f"PostgreSQL server binaries (initdb, pg_ctl) not found; looked in {looked}. "
        f"Install them (Debian: apt-get install postgresql-15, which .ci/run does) "
        f"or set {BINDIR_ENV} to their folder."
    )


def _run_as() -> Optional[str]:
    """The account to run the server as: ``postgres`` when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root, and PostgreSQL refuses root, but there is no {SYSTEM_USER!r} system user "
            "to run it as (Debian's postgresql package creates one)"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and `runuser` (util-linux) is missing to drop to the postgres user")
    return SYSTEM_USER


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def unavailable(reason: str) -> NoReturn:
    """Skip, except under CI, where PostgreSQL tests must run and a missing server is a failure."""
    if in_ci():
        pytest.fail(f"CI=true but PostgreSQL cannot run: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


# -- the cluster ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """A running throwaway cluster: where it listens and how to make databases in it."""

    bindir: Path
    root: Path
    port: int
    run_as: Optional[str]
    user: str = USER

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{HOST}:{self.port}/{database}"

    # -- running the tools ------------------------------------------------------------------------

    def _command(self, tool: str, *args: str) -> List[str]:
        command = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command

    def _run(self, tool: str, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # no stray PGDATA/PGPORT
        env.update(LC_ALL="C", LANG="C")
        return subprocess.run(
            self._command(tool, *args), capture_output=True, text=True, timeout=timeout, env=env, cwd=self.root
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def initdb(self) -> None:
        done = self._run("initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                         "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self) -> bool:
        """Start the server on ``self.port``; False if the port was taken meanwhile (try another)."""
        options = f"-c listen_addresses={HOST} -p {self.port} -k {self.socket_dir}"
        done = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w",
                         "-t", str(START_TIMEOUT), "-o", options, "start", timeout=START_TIMEOUT + 10)
        if done.returncode == 0:
            return True
        tail = self._log_tail()
        if "could not bind" in tail or "Address already in use" in tail:
            log.info("port %d was taken before PostgreSQL bound it; trying another", self.port)
            return False
        raise RuntimeError(f"pg_ctl start failed ({done.returncode}): {done.stderr.strip()}\nserver log:\n{tail}")

    def stop(self) -> None:
        """Stop at once (``-m immediate``): the data is thrown away, so no checkpoint is needed."""
        if (self.data_dir / "postmaster.pid").exists():
            done = self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop", timeout=30)
            if done.returncode != 0:
                log.warning("pg_ctl stop failed: %s", done.stderr.strip())

    # -- databases --------------------------------------------------------------------------------

    async def create_database(self, name: Optional[str] = None) -> str:
        """Create an empty database (from ``template0``) and return its name."""
        import asyncpg

        name = name or f"test_{uuid.uuid4().hex[:12]}"
        connection = await asyncpg.connect(self.url(), timeout=30)
        try:
            # Names cannot be bound parameters; quote_ident-style quoting keeps them literal.
            await connection.execute(f'CREATE DATABASE "{_checked_name(name)}" TEMPLATE template0')
        finally:
            await connection.close()
        return name

    async def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still in it (a killed bot's, say)."""
        import asyncpg

        connection = await asyncpg.connect(self.url(), timeout=30)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{_checked_name(name)}" WITH (FORCE)')
        finally:
            await connection.close()

    @contextlib.asynccontextmanager
    async def database(self, name: Optional[str] = None) -> AsyncIterator[str]:
        """A fresh database's URL for the ``async with`` block; dropped afterwards."""
        created = await self.create_database(name)
        try:
            yield self.url(created)
        finally:
            await self.drop_database(created)


def _checked_name(name: str) -> str:
    if not name or len(name) > 63 or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise ValueError(f"database names here are 1-63 letters, digits or underscores, not {name!r}")
    return name


def _make_root(run_as: Optional[str]) -> Path:
    # Straight under the system temp folder, not pytest's (mode 0700, owned by root): the postgres
    # user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="dinobot-pg-"))
    if run_as is not None:
        shutil.chown(root, user=run_as, group=run_as)
    return root


def start_cluster(bindir: Optional[Path] = None) -> PostgresServer:
    """initdb + start a throwaway cluster; raises :class:`PostgresUnavailable` if this machine cannot."""
    bindir = bindir or find_bindir()
    run_as = _run_as()
    root = _make_root(run_as)
    server = PostgresServer(bindir=bindir, root=root, port=0, run_as=run_as)
    try:
        server.initdb()
        for _ in range(START_ATTEMPTS):
            server.port = _free_port()
            if server.start():
                return server
        raise RuntimeError(f"PostgreSQL could not bind a free port on {HOST} in {START_ATTEMPTS} attempts")
    except BaseException:
        remove_cluster(server)
        raise


def remove_cluster(server: PostgresServer) -> None:
    """Stop the server (if it runs) and delete its folder; safe to call twice."""
    try:
        server.stop()
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's throwaway PostgreSQL server (skipped where impossible, failed under CI)."""
    try:
        bindir = find_bindir()
        _run_as()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    started = time.perf_counter()
    server = start_cluster(bindir)
    # Also on an interpreter exit that skips fixture teardown (an interrupted run).
    atexit.register(remove_cluster, server)
    log.info("PostgreSQL on %s:%d in %s (started in %.2f s)", HOST, server.port, server.root,
             time.perf_counter() - started)
    try:
        yield server
    finally:
        remove_cluster(server)
        atexit.unregister(remove_cluster)


_database_counter = itertools.count(1)


@pytest.fixture
async def postgres_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh, empty database for this test: ``postgresql://dinobot@127.0.0.1:PORT/DB``."""
    stem = "".join(c if c.isascii() and c.isalnum() else "_" for c in request.node.name.lower())[:40]
    name = f"t{next(_database_counter)}_{stem}_{uuid.uuid4().hex[:6]}"
    async with postgres.database(name) as url:
        yield url
