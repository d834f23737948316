"""DinoBot, unmodified, logged in to the fake Discord on 127.0.0.1: the servers, members and
settings the bot tests share, and a harness that starts, stops and restarts the bot."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import AsyncIterator

from bot.app import DinoBot
from bot.config import Config
from bot.services.training.settings import TrainingSettings
from model import TrainConfig, train_path, val_path
from tests.support.fake_discord import MANAGE_GUILD, FakeDiscord, FakeGuild, FakeUser

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


def make_config(data_dir: Path, **changes) -> Config:
    """Small, fast settings: 2-epoch fine-tunes, no scheduler, generous cooldowns.

    The promotion tolerance is the real default (``DINOBOT_PROMOTE_TOLERANCE``, 0.05): bot tests
    judge fine-tunes by the rule the bot ships with.
    """
    training = TrainingSettings(min_names=5, min_new_names=5, schedule_minutes=0, base_val_samples=20,
                                train_config=TrainConfig(epochs=2, lr=2e-3, patience=2))
    config = Config(token="fake-bot-token", data_dir=data_dir, base_corpus=(train_path(), val_path()),
                    generate_rate=(100, 30.0), submit_rate=(100, 60.0), training=training)
    return replace(config, **changes)


def with_epochs(config: Config, epochs: int) -> Config:
    """``config`` with ``epochs`` per ensemble member and no early stopping, so a fine-tune's
    length is set by the test, not by when validation stops improving."""
    train = TrainConfig(epochs=epochs, lr=2e-3, patience=epochs)
    return replace(config, training=replace(config.training, train_config=train))


def long_running(config: Config) -> Config:
    """Settings whose fine-tunes would run for minutes: every test using them cancels the job."""
    return with_epochs(config, 100_000)


class _TestDinoBot(DinoBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before a re-IDENTIFY to respect Discord's rate limit; the fake has none."""


@dataclass
class Harness:
    fake: FakeDiscord
    config: Config
    bot: DinoBot | None = None
    _task: asyncio.Task | None = field(default=None, repr=False)

    async def start(self, **options) -> DinoBot:
        """Start the bot; ``options`` go to its constructor (``force_sync=True``, say)."""
        self.bot = _TestDinoBot(self.config, guild_ready_timeout=0.05, **options)
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


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, config: Config, **options) -> AsyncIterator[Harness]:
    """A harness whose bot runs for the ``async with`` block and is stopped after it, also when
    the test fails (a bot left running would leak its training thread into the next test)."""
    harness = Harness(fake, config)
    await harness.start(**options)
    try:
        yield harness
    finally:
        await harness.stop()
