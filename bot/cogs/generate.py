"""``/dinoname`` (with a persistent "🔁 More" button) and ``/dinoinfo``.

Every way of generating names spends the member's one generation budget
(``DINOBOT_GENERATE_PER_30S``): ``/dinoname`` and each "🔁 More" press alike.

"🔁 More" never adds a message to the channel: pressed by the member who asked, it replaces the
names in that message; pressed by anyone else, it answers them privately (with a More button of
their own, which then edits that private answer). A busy channel so sees one message per
``/dinoname``, however often its button is pressed.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import bot_version
from bot.services.generation import MAX_COUNT, TEMPERATURE_RANGE, Generated
from bot.ui.checks import MemberBudget
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
            await cog.more(interaction, self.prefix, self.count, self.temperature)
        except Exception as error:  # noqa: BLE001 - dynamic items have no tree error handler
            await report_error(interaction, error)


class MoreViews:
    """One "🔁 More" view per set of options, reused for every message with those options.

    The view holds only a dynamic item, so discord.py never ties it to a message and sharing it
    is safe; building a fresh one per reply cost ~0.1 ms of the event loop's time (os.urandom for
    its id, a future, copied children), which adds up in a burst of 200 replies.
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


def asked_by(message: discord.Message | None) -> int | None:
    """Who ran the command (or pressed the button) that created ``message``, if Discord says."""
    metadata = message.interaction_metadata if message is not None else None
    return metadata.user.id if metadata is not None else None


class Generate(commands.Cog):
    def __init__(self, bot: DinoBot) -> None:
        self.bot = bot
        self.more_views = MoreViews()
        self.budget = MemberBudget(*bot.config.generate_rate)  # /dinoname and More share it

    async def _names(self, interaction: discord.Interaction, prefix: str, count: int,
                     temperature: float) -> tuple[discord.Embed, discord.ui.View]:
        """Spend the member's budget, then invent: the one way any command or button gets names."""
        self.budget.spend(interaction.user.id)
        result = await self.bot.generator.generate(interaction.guild_id, prefix, count, temperature)
        embed = names_embed(result, bool(self.bot.known_names))
        return embed, self.more_views.get(result.prefix, count, temperature)

    async def more(self, interaction: discord.Interaction, prefix: str, count: int, temperature: float) -> None:
        """"🔁 More": new names in place for the member who asked, privately for anyone else."""
        embed, view = await self._names(interaction, prefix, count, temperature)
        if asked_by(interaction.message) == interaction.user.id:
            await interaction.response.edit_message(embed=embed, view=view)
            return
        # A view of its own: discord.py gives a timeout-less view on an ephemeral reply a
        # 15-minute timeout, which must not leak into the shared views of public replies.
        private = discord.ui.View(timeout=None).add_item(MoreButton(prefix, count, temperature))
        await interaction.response.send_message(embed=embed, view=private, ephemeral=True)

    @app_commands.command(name="dinoname", description="Invent new dinosaur names")
    @app_commands.describe(prefix="Letters the names start with, e.g. tyr",
                           count=f"How many names (1–{MAX_COUNT})",
                           temperature="Below 1: safer names; above 1: wilder ones (default 1)")
    async def dinoname(self, interaction: discord.Interaction, prefix: app_commands.Range[str, 0, 31] = "",
                       count: app_commands.Range[int, 1, MAX_COUNT] = 1,
                       temperature: app_commands.Range[float, TEMPERATURE_RANGE[0], TEMPERATURE_RANGE[1]] = 1.0,
                       ) -> None:
        embed, view = await self._names(interaction, prefix, count, temperature)
        await interaction.response.send_message(embed=embed, view=view)

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
