"""Shared fixtures: DinoBot, unmodified, logged in to the fake Discord on 127.0.0.1.

``dino`` gives a running bot in two servers with an admin and a member in each; tests talk to it
through ``dino.fake`` exactly as Discord would, and can restart the bot on the same data
directory (``await dino.restart()``) to check what survives.
"""
from __future__ import annotations

import os

# One BLAS thread, as the bot runs (bot/__main__.py): set before NumPy is imported below, so
# parallel test runs on two shared cores do not oversubscribe them.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402
from typing import AsyncIterator  # noqa: E402

import pytest  # noqa: E402

from bot.config import Config  # noqa: E402
from tests.support.fake_checks import check_fake_at_teardown  # noqa: E402
from tests.support.fake_discord import FakeDiscord  # noqa: E402
from tests.support.harness import GUILD_A, GUILD_B, OWNER, Harness, make_config, make_guild, running  # noqa: E402

# -- PostgreSQL: a throwaway cluster per session, an empty database per test (tests/support/postgres.py).
# Imported here so every test can ask for them; skipped without the server, failed under CI=true.
from tests.support.postgres import postgres, postgres_url  # noqa: E402, F401
from tests.support.stores import crashable_postgres, pg_url  # noqa: E402, F401 (a schema per test; a cluster to crash)

# -- end PostgreSQL ------------------------------------------------------------------------------------


@pytest.fixture
def bot_config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    """The fake Discord; at teardown it must have seen nothing Discord would refuse
    (``tests/support/fake_checks.py``: mark a test ``fake_refusals`` when refusals are the point)."""
    guilds = [make_guild(GUILD_A, "Dino Club"), make_guild(GUILD_B, "Fossil Friends")]
    async with FakeDiscord(guilds=guilds, owner=OWNER, heartbeat_interval=0.5) as server, server.patch_discord():
        yield server
    check_fake_at_teardown(server, request)


@pytest.fixture
async def dino(fake: FakeDiscord, bot_config: Config) -> AsyncIterator[Harness]:
    async with running(fake, bot_config) as harness:
        yield harness
