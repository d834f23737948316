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

import asyncio  # noqa: E402
import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import AsyncIterator

import pytest

from bot.app import DinoBot
from bot.config import Config
from bot.training_settings import TrainingSettings
from model import TrainConfig, train_path, val_path
from tests.fake_discord import MANAGE_GUILD, FakeDiscord, FakeGuild, FakeUser

# -- PostgreSQL: a throwaway cluster per session, an empty database per test (tests/support/postgres.py).
# Imported here so every test can ask for them; skipped without the server, failed under CI=true.
from tests.support.postgres import postgres, postgres_url  # noqa: E402, F401
# -- end PostgreSQL ----------------------------------------------------------------------------------

GUILD_A = 1000
GUILD_B = 2000
ADMIN = FakeUser(id=501, username="ada_admin")
MEMBER = FakeUser(id=502, username="mo_member")
OTHER_MEMBER = FakeUser(id=503, username="olga_other")
OWNER = FakeUser(id=9, username="bot_owner")
ADMIN_ROLE = 7001


def make_guild(guild_id: int, name: str) -> FakeGuild:
    guild = FakeGuild(id=guild_id, name=name)
    guild.add_role(guild_id + ADMIN_ROLE, "Mods", MANAGE_GUILD)
    guild.add_member(ADMIN, roles=[guild_id + ADMIN_ROLE])
    guild.add_member(MEMBER)
    guild.add_member(OTHER_MEMBER)
    return guild


def test_config(data_dir: Path, **changes) -> Config:
    """Small, fast settings: 2-epoch fine-tunes, no scheduler, generous cooldowns."""
    training = TrainingSettings(min_names=5, min_new_names=5, schedule_minutes=0, tolerance=10.0,
                                base_val_samples=20, train_config=TrainConfig(epochs=2, lr=2e-3, patience=2))
    config = Config(token="fake-bot-token", data_dir=data_dir, base_corpus=(train_path(), val_path()),
                    generate_rate=(100, 30.0), submit_rate=(100, 60.0), training=training)
    return replace(config, **changes)


class _TestDinoBot(DinoBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before a re-IDENTIFY to respect Discord's rate limit; the fake has none."""


@dataclass
class Harness:
    fake: FakeDiscord
    config: Config
    bot: DinoBot | None = None
    _task: asyncio.Task | None = field(default=None, repr=False)

    async def start(self) -> DinoBot:
        self.bot = _TestDinoBot(self.config, guild_ready_timeout=0.05)
        await self.bot.login(self.fake.token)
        ready_before = self.fake.gateway.ready_count
        self._task = asyncio.create_task(self.bot.connect())
        await self.fake.wait_for_ready(count=ready_before + 1)
        # on_ready comes guild_ready_timeout after READY; closing before it makes discord.py
        # dispatch it into a closed client (a "coroutine was never awaited" warning).
        await asyncio.wait_for(self.bot.wait_until_ready(), timeout=10)
        return self.bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.close()
            assert self._task is not None
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=10)
            self.bot = None

    async def restart(self) -> DinoBot:
        await self.stop()
        return await self.start()


@pytest.fixture
def bot_config(tmp_path: Path) -> Config:
    return test_config(tmp_path / "data")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    guilds = [make_guild(GUILD_A, "Dino Club"), make_guild(GUILD_B, "Fossil Friends")]
    async with FakeDiscord(guilds=guilds, owner=OWNER, heartbeat_interval=0.5) as server, server.patch_discord():
        yield server


@pytest.fixture
async def dino(fake: FakeDiscord, bot_config: Config) -> AsyncIterator[Harness]:
    harness = Harness(fake, bot_config)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()
