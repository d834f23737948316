"""The Discord bot object: wires the services together and owns their lifetimes.

:meth:`DinoBot.open_services` opens the database, loads the corpus and the models and starts
the training service; ``python -m bot`` calls it *before* connecting to Discord, so a broken
local resource is reported without a login (a test harness lets ``setup_hook`` call it).
``setup_hook`` (runs once, inside login) then adds the cogs and syncs commands if they changed.
``close`` undoes it in reverse, and only for what was opened, so a start-up that failed half-way
still closes the database (whose thread would otherwise keep the process alive): stop training
first (it may still write to the store, and its watchers deliver their final edits while the
cogs unload), then the generator, then the store.

The bot is an ``AutoShardedBot``: one process runs every shard by default, or only the shards
``config.shards`` names, and then serves, schedules and fine-tunes only the servers on them
(see :mod:`bot.sharding`). Commands are synced by the process that runs shard 0.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version

import discord
from discord.ext import commands

from bot.config import Config
from bot.services.generation import NameGenerator
from bot.services.likeness import LikenessService
from bot.services.registry import ModelRegistry
from bot.services.store import Store
from bot.services.suggestions import Suggestions
from bot.services.training.service import TrainingService
from bot.startup import VALIDATION_KEY, open_store, read_corpus, start_registry
from bot.ui.checks import MemberRate
from bot.ui.command_sync import sync_commands
from bot.ui.replies import report_error

log = logging.getLogger(__name__)

COGS = ("bot.cogs.generate", "bot.cogs.corpus", "bot.cogs.review", "bot.cogs.retrain", "bot.cogs.keep",
        "bot.cogs.meaning", "bot.cogs.models", "bot.cogs.help")


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
    likeness: LikenessService
    suggestions: Suggestions

    def __init__(self, config: Config, *, force_sync: bool = False, **kwargs) -> None:
        """``force_sync``: sync the slash commands even if they look unchanged (``--sync``)."""
        # The bot has no voice: discord.py's documented switches for its "PyNaCl / davey is not
        # installed" warnings (class attributes, read when a client is created).
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True
        shards = config.shards
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None,
                         allowed_mentions=discord.AllowedMentions.none(), shard_count=shards.count,
                         shard_ids=None if shards.ids is None else list(shards.ids), **kwargs)
        self.config = config
        self.force_sync = force_sync
        self.known_names: frozenset[str] = frozenset()
        self.tree.on_error = report_error  # one handler for every slash command
        self._services_opened = False
        self.last_interaction = 0.0  # time.monotonic() of the newest interaction: training yields to it
        self.submit_rate = MemberRate(*config.submit_rate)  # /submit and ⭐ Keep share it
        self.generate_rate = MemberRate(*config.generate_rate)  # /dinoname and 🔁 More share it

    async def open_services(self) -> None:
        """Open every local resource, each failure a one-line :class:`~bot.errors.StartupError`.

        Each service is kept on ``self`` the moment it is open, so :meth:`close` closes exactly
        what this got to. Runs once; ``setup_hook`` calls it if nobody did before.
        """
        if self._services_opened:
            return
        self._services_opened = True
        config = self.config
        corpus = await asyncio.to_thread(read_corpus, config.base_corpus)
        base_val = await asyncio.to_thread(read_corpus, config.base_validation, VALIDATION_KEY)
        self.known_names = frozenset(corpus)
        self.store = await open_store(config.database, daily_limit=config.daily_limit, known_names=self.known_names)
        self.registry = ModelRegistry(self.store, config.models_dir, base_checkpoint=config.base_checkpoint,
                                      max_cached=config.training.max_cached_models)
        await start_registry(self.registry)
        self.trainer = TrainingService(self.store, self.registry, config.training, replay_names=corpus or None,
                                       base_val_names=base_val or None,
                                       activity=lambda: self.last_interaction, owns=config.shards.owns)
        await self.trainer.start()
        self.generator = NameGenerator(self.store, self.registry, self.known_names,
                                       activity=lambda: self.last_interaction)
        self.generator.prime(self.registry.base.model)
        self.likeness = LikenessService(self.registry)
        self.likeness.prime(self.registry.base)
        self.suggestions = Suggestions(self.generator, self.registry)

    async def setup_hook(self) -> None:
        await self.open_services()
        for extension in COGS:
            await self.load_extension(extension)
        if self.config.shards.runs(0):  # one process of a cluster syncs the commands for all
            await sync_commands(self.tree, self.config.sync_state_file, application_id=self.application_id,
                                dev_guild_id=self.config.dev_guild_id, force=self.force_sync)
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
        """Cancel training, unload the cogs, close the generator and the database, disconnect.

        Each step runs only if its service was opened, and a step that fails is logged without
        stopping the next: the database must be closed whatever happened before, or its thread
        keeps the process alive.
        """
        trainer, generator, likeness, store = (getattr(self, name, None)
                                               for name in ("trainer", "generator", "likeness", "store"))
        steps = [("training", trainer and trainer.close), ("cogs", self._unload_cogs),
                 ("generation", generator and generator.close), ("percentiles", likeness and likeness.close),
                 ("database", store and store.close)]
        for what, step in steps:
            if step is None:
                continue
            try:
                await step()
            except Exception:  # noqa: BLE001 - keep closing the rest
                log.exception("closing %s failed", what)
        await super().close()

    async def _unload_cogs(self) -> None:
        """Before the store closes: /retrain watchers deliver their final edit as they unload."""
        for extension in list(self.extensions):
            with contextlib.suppress(commands.ExtensionNotLoaded):
                await self.unload_extension(extension)
