"""``python -m bot`` with one extra, trivial ``/ping`` command: the latency floor of the bot benchmarks.

    DISCORD_TOKEN=... python benchmarks/ping_bot.py

Everything else is the shipped bot unchanged: the same entry point, configuration, services
and cogs. ``/ping`` answers "pong" at once, so its latency is what any interaction costs
(gateway frame in, parsing, dispatch, the callback request out); a command's figure divided by
``/ping``'s says what the command itself adds.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import discord  # noqa: E402
from discord import app_commands  # noqa: E402

import bot.__main__ as entry  # noqa: E402  (before bot.app: it pins the BLAS threads)
import bot.app  # noqa: E402
from bot.app import DinoBot  # noqa: E402


class PingBot(DinoBot):
    async def setup_hook(self) -> None:
        @app_commands.command(name="ping", description="Trivial reply: the latency floor")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

        self.tree.add_command(ping)
        await super().setup_hook()


if __name__ == "__main__":
    bot.app.DinoBot = PingBot  # run() imports the class from bot.app when it builds the bot
    sys.exit(entry.main())
