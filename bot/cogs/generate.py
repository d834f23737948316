"""``/dinoname`` (with a persistent "🔁 More" button) and ``/dinoinfo``."""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import bot_version
from bot.services.generation import MAX_COUNT, TEMPERATURE_RANGE, Generated
from bot.ui.checks import generate_cooldown
from bot.ui.look import DINO_GREEN, EMBED_DESCRIPTION, fit, model_label, when
from bot.ui.replies import report_error

if TYPE_CHECKING:
    from bot.app import DinoBot


def names_embed(result: Generated, known_configured: bool) -> discord.Embed:
    lines = []
    for item in result.names:
        name = item.name.capitalize() + ("…" if not item.complete else "")
        tag = " — *a real dinosaur!*" if item.known else (" — ✨ brand new" if known_configured else "")
        lines.append(f"**{name}**{tag}")
    if result.short:
        lines.append(f"\n*Only {len(result.names)} new names start with “{result.prefix}”; "
                     "try a shorter prefix or a higher temperature.*")
    if not result.names:
        lines = [f"No new names start with “{result.prefix}”. Try a shorter prefix or a higher temperature."]
    title = "🦕 A new dinosaur" if len(result.names) == 1 else "🦕 New dinosaurs"
    embed = discord.Embed(title=title, description=fit("\n".join(lines), EMBED_DESCRIPTION), colour=DINO_GREEN)
    footer = f"From {model_label(result.served.version)}"
    if result.prefix:
        footer += f" · prefix “{result.prefix}”"
    embed.set_footer(text=footer)
    return embed


MORE_TEMPLATE = r"dino:more:(?P<prefix>[a-z]{0,31}):(?P<count>\d{1,2}):(?P<temp>\d{1,3})"


class MoreButton(discord.ui.DynamicItem[discord.ui.Button], template=MORE_TEMPLATE):
    """Re-rolls with the same options. Its state lives in the custom id, so it survives restarts."""

    def __init__(self, prefix: str, count: int, temperature: float) -> None:
        self.prefix, self.count, self.temperature = prefix, count, temperature
        super().__init__(discord.ui.Button(label="More", emoji="🔁", style=discord.ButtonStyle.secondary,
                                           custom_id=f"dino:more:{prefix}:{count}:{round(temperature * 100)}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> "MoreButton":
        return cls(match["prefix"], int(match["count"]), int(match["temp"]) / 100)

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            cog: Generate = interaction.client.get_cog(Generate.__cog_name__)  # type: ignore[assignment]
            await cog.send_names(interaction, self.prefix, self.count, self.temperature)
        except Exception as error:  # noqa: BLE001 - dynamic items have no tree error handler
            await report_error(interaction, error)


class MoreViews:
    """One "🔁 More" view per set of options, reused for every message with those options.

    The view holds only a dynamic item, so discord.py never ties it to a message and sharing it
    is safe; building a fresh one per reply costs the event loop an os.urandom id, a future and
    copied children, which adds up in a burst of 200 replies (README, interaction benchmark).
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._views: OrderedDict[tuple[str, int, float], discord.ui.View] = OrderedDict()

    def get(self, prefix: str, count: int, temperature: float) -> discord.ui.View:
        key = (prefix, count, temperature)
        view = self._views.get(key)
        if view is None:
            view = discord.ui.View(timeout=None)
            view.add_item(MoreButton(prefix, count, temperature))
            self._views[key] = view
            if len(self._views) > self.size:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(key)
        return view


class Generate(commands.Cog):
    def __init__(self, bot: DinoBot) -> None:
        self.bot = bot
        self.more_views = MoreViews()

    async def send_names(self, interaction: discord.Interaction, prefix: str, count: int,
                         temperature: float) -> None:
        result = await self.bot.generator.generate(interaction.guild_id, prefix, count, temperature)
        view = self.more_views.get(result.prefix, count, temperature)
        await interaction.response.send_message(embed=names_embed(result, bool(self.bot.known_names)), view=view)

    @app_commands.command(name="dinoname", description="Invent new dinosaur names")
    @app_commands.describe(prefix="Letters the names start with, e.g. tyr",
                           count=f"How many names (1–{MAX_COUNT})",
                           temperature="Below 1: safer names; above 1: wilder ones (default 1)")
    @generate_cooldown()
    async def dinoname(self, interaction: discord.Interaction, prefix: app_commands.Range[str, 0, 31] = "",
                       count: app_commands.Range[int, 1, MAX_COUNT] = 1,
                       temperature: app_commands.Range[float, TEMPERATURE_RANGE[0], TEMPERATURE_RANGE[1]] = 1.0,
                       ) -> None:
        await self.send_names(interaction, prefix, count, temperature)

    @app_commands.command(name="dinoinfo", description="Which model answers in this server, and how good it is")
    async def dinoinfo(self, interaction: discord.Interaction) -> None:
        info = await self.bot.generator.describe(interaction.guild_id)
        embed = discord.Embed(title="🦖 DinoBot", colour=DINO_GREEN)
        embed.add_field(name="Model", value=model_label(info.version).capitalize())
        embed.add_field(name="Network", value=info.network)
        if info.val_loss is not None:
            embed.add_field(name="Validation loss", value=f"{info.val_loss:.3f} nats/letter")
        embed.add_field(name="Trained on" if info.version is None else "Fine-tuned on", value=info.trained_on)
        if info.trained_at is not None:
            embed.add_field(name="Trained", value=when(info.trained_at))
        embed.set_footer(text=f"DinoBot {bot_version()}")
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: DinoBot) -> None:
    bot.add_dynamic_items(MoreButton)
    await bot.add_cog(Generate(bot))
