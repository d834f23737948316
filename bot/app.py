"""The Discord bot object: wires the services together and owns their lifetimes.

``setup_hook`` (runs once, before the gateway connects) opens the database, loads the models,
starts the training service, adds the cogs and syncs commands if they changed. ``close`` undoes
it in reverse order: stop training first (it may still write to the store), then the store.

The bot is an ``AutoShardedBot``: one process runs every shard by default, or only the shards
``config.shards`` names, and then serves, schedules and fine-tunes only the servers on them
(see :mod:`bot.sharding`). Commands are synced by the process that runs shard 0.
"""
from __future__ import annotations

import gc
import logging
import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version

import discord
from discord.ext import commands

from bot.config import Config
from bot.services.generation import NameGenerator
from bot.services.registry import ModelRegistry
from bot.services.store import Store
from bot.services.training.service import TrainingService
from bot.ui.command_sync import sync_if_changed
from bot.ui.replies import report_error
from model import read_names

log = logging.getLogger(__name__)

COGS = ("bot.cogs.generate", "bot.cogs.corpus", "bot.cogs.review", "bot.cogs.retrain")


async def check_database(config: Config) -> None:
    """Open (and migrate) the configured database once and close it again, before going online,
    so a wrong address or a server that is down is reported without touching Discord."""
    store = await Store.open(config.database, daily_limit=config.daily_limit)
    await store.close()


def bot_version() -> str:
    try:
        return version("dinobot")
    except PackageNotFoundError:
        return "unknown"


class DinoBot(commands.AutoShardedBot):
    """Slash commands only: no message content, no privileged intents."""

    store: Store
    registry: ModelRegistry
    trainer: TrainingService
    generator: NameGenerator

    def __init__(self, config: Config, **kwargs) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        shards = config.shards
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), shard_count=shards.count,
                         shard_ids=None if shards.ids is None else list(shards.ids), **kwargs)
        self.config = config
        self.known_names: frozenset[str] = frozenset()
        self.tree.on_error = report_error  # one handler for every slash command
        self._services_started = False
        self.last_interaction = 0.0  # time.monotonic() of the newest interaction: training yields to it

    async def setup_hook(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        corpus = [name for path in config.base_corpus for name in read_names(path)]
        self.known_names = frozenset(corpus)
        self.store = await Store.open(config.database, daily_limit=config.daily_limit, known_names=self.known_names)
        self.registry = ModelRegistry(self.store, config.models_dir, base_checkpoint=config.base_checkpoint,
                                      max_cached=config.training.max_cached_models)
        await self.registry.start()
        self.trainer = TrainingService(self.store, self.registry, config.training, replay_names=corpus or None,
                                       activity=lambda: self.last_interaction, owns=config.shards.owns)
        await self.trainer.start()
        self.generator = NameGenerator(self.store, self.registry, self.known_names,
                                       activity=lambda: self.last_interaction)
        self.generator.prime(self.registry.base.model)
        self._services_started = True
        for extension in COGS:
            await self.load_extension(extension)
        if config.shards.runs(0):  # one process of a cluster syncs the commands for all
            await sync_if_changed(self.tree, config.sync_state_file, config.dev_guild_id)
        self.log_invite_url()
        # Everything loaded so far (modules, models, caches) lives as long as the bot: keep it
        # out of the cyclic GC's full collections, which otherwise stall the loop under load.
        gc.freeze()

    def log_invite_url(self) -> None:
        if self.application_id is None:
            return
        # Interaction replies need no channel permissions at all, so the bot asks for none.
        url = discord.utils.oauth_url(self.application_id, permissions=discord.Permissions.none(),
                                      scopes=("bot", "applications.commands"))
        log.info("invite DinoBot to a server: %s", url)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.last_interaction = time.monotonic()

    async def on_ready(self) -> None:
        shards = replace(self.config.shards, count=self.shard_count)
        log.info("logged in as %s in %d servers, %s (DinoBot %s, database %s)", self.user, len(self.guilds),
                 shards.describe(), bot_version(), self.store.target.redacted)

    async def close(self) -> None:
        """Cancel training, close the database, then disconnect."""
        if self._services_started:
            self._services_started = False
            await self.trainer.close()
            await self.generator.close()
            await self.store.close()
        await super().close()
