"""``/dinoname`` (with ⭐ Keep, 📖 Meaning and a persistent "🔁 More") and ``/dinoinfo``.

Every control on a reply is a dynamic item whose state is in its custom id, so replies keep
working after a restart. ``/dinoname prefix:`` suggests names as the member types (the
suggestions service; junk gets no suggestions), and ``private:True`` answers privately.

Every way of generating names spends the member's one generation budget
(``DINOBOT_GENERATE_PER_30S``, ``bot.generate_rate``): ``/dinoname`` and each 🔁 More press
alike. 🔁 More never adds a message to the channel: pressed by the member who asked, it replaces
the names in that message; pressed by anyone else, it answers them privately (with a More of
their own, which then edits that private answer). A busy channel so sees one message per
``/dinoname``, however often its button is pressed.
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import bot_version
from bot.cogs.keep import keep_component
from bot.cogs.meaning import meaning_component
from bot.services import charts
from bot.services.generation import MAX_COUNT, TEMPERATURE_RANGE, Generated
from bot.services.records import ModelVersion, VersionStatus
from bot.ui.components import JSON, Prebuilt, prototype
from bot.ui.look import CHOICE_NAME, CHOICES, DINO_GREEN, EMBED_DESCRIPTION, fit, model_label, when
from bot.ui.replies import errors_reported

if TYPE_CHECKING:
    from bot.app import DinoBot

log = logging.getLogger(__name__)
HISTORY_CHART = "model-history.png"


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


MORE_TEMPLATE = r"dino:more:(?P<prefix>[a-z]{0,31}):(?P<count>\d{1,2}):(?P<temp>\d{1,3})(?P<private>:p)?"


def more_id(prefix: str, count: int, temperature: float, private: bool) -> str:
    return f"dino:more:{prefix}:{count}:{round(temperature * 100)}" + (":p" if private else "")


class MoreButton(discord.ui.DynamicItem[discord.ui.Button], template=MORE_TEMPLATE):
    """Re-rolls with the same options. Its state lives in the custom id, so it survives restarts."""

    def __init__(self, prefix: str, count: int, temperature: float, private: bool = False) -> None:
        self.prefix, self.count, self.temperature, self.private = prefix, count, temperature, private
        super().__init__(discord.ui.Button(label="More", emoji="🔁", style=discord.ButtonStyle.secondary,
                                           custom_id=more_id(prefix, count, temperature, private)))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> "MoreButton":
        return cls(match["prefix"], int(match["count"]), int(match["temp"]) / 100, bool(match["private"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            cog: Generate = interaction.client.get_cog(Generate.__cog_name__)  # type: ignore[assignment]
            await cog.more(interaction, self.prefix, self.count, self.temperature, self.private)


_MORE = prototype(MoreButton("", 1, 1.0))


def more_component(prefix: str, count: int, temperature: float, private: bool) -> JSON:
    """What :class:`MoreButton` renders to, as JSON."""
    return {**_MORE, "custom_id": more_id(prefix, count, temperature, private)}


def reply_components(result: Generated, count: int, temperature: float, *, private: bool,
                     in_server: bool) -> Prebuilt:
    """⭐ Keep (in servers, for whole names that are not real dinosaurs), 📖 Meaning, 🔁 More.

    One name gets buttons on one row; several get a menu each (a row apiece) above More.
    """
    keep = keep_component([n.name for n in result.names if in_server and n.complete and not n.known])
    meaning = meaning_component([n.name for n in result.names])
    more = more_component(result.prefix, count, temperature, private)
    controls = [c for c in (keep, meaning) if c is not None]
    if len(result.names) > 1:
        return Prebuilt([[c] for c in controls] + [[more]])
    return Prebuilt([controls + [more]])


def history_points(versions: list[ModelVersion], served: int | None) -> list[charts.VersionPoint]:
    return [charts.VersionPoint(v.version, v.val_loss_before, v.val_loss_after,
                                v.status is VersionStatus.PROMOTED, v.version == served) for v in versions]


def asked_by(message: discord.Message | None) -> int | None:
    """Who ran the command (or pressed the button) that created ``message``, if Discord says."""
    metadata = message.interaction_metadata if message is not None else None
    return metadata.user.id if metadata is not None else None


class Generate(commands.Cog):
    def __init__(self, bot: DinoBot) -> None:
        self.bot = bot

    async def _names(self, interaction: discord.Interaction, prefix: str, count: int, temperature: float,
                     private: bool) -> tuple[discord.Embed, Prebuilt]:
        """Spend the member's budget, then invent: the one way any command or button gets names."""
        self.bot.generate_rate.use(interaction.user.id)  # raises CommandOnCooldown, worded by report_error
        result = await self.bot.generator.generate(interaction.guild_id, prefix, count, temperature)
        components = reply_components(result, count, temperature, private=private,
                                      in_server=interaction.guild_id is not None)
        return names_embed(result, bool(self.bot.known_names)), components

    async def send_names(self, interaction: discord.Interaction, prefix: str, count: int,
                         temperature: float, private: bool = False) -> None:
        embed, components = await self._names(interaction, prefix, count, temperature, private)
        await interaction.response.send_message(embed=embed, view=components,  # type: ignore[arg-type]
                                                ephemeral=private)

    async def more(self, interaction: discord.Interaction, prefix: str, count: int, temperature: float,
                   private: bool) -> None:
        """🔁 More: new names in place for the member who asked, privately for anyone else."""
        mine = asked_by(interaction.message) == interaction.user.id
        embed, components = await self._names(interaction, prefix, count, temperature, private or not mine)
        if mine:
            await interaction.response.edit_message(embed=embed, view=components)  # type: ignore[arg-type]
        else:
            await interaction.response.send_message(embed=embed, view=components,  # type: ignore[arg-type]
                                                    ephemeral=True)

    @app_commands.command(name="dinoname", description="Invent new dinosaur names")
    @app_commands.describe(prefix="Letters the names start with, e.g. tyr (suggestions appear as you type)",
                           count=f"How many names (1–{MAX_COUNT})",
                           temperature="Below 1: safer names; above 1: wilder ones (default 1)",
                           private="Only you see the names (default: everyone in the channel)")
    async def dinoname(self, interaction: discord.Interaction, prefix: app_commands.Range[str, 0, 31] = "",
                       count: app_commands.Range[int, 1, MAX_COUNT] = 1,
                       temperature: app_commands.Range[float, TEMPERATURE_RANGE[0], TEMPERATURE_RANGE[1]] = 1.0,
                       private: bool = False) -> None:
        await self.send_names(interaction, prefix, count, temperature, private)

    @dinoname.autocomplete("prefix")
    async def suggest_prefix(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """What was typed (kept as it is), then names the server's model makes from it."""
        try:
            names = await self.bot.suggestions.suggest(interaction.guild_id, current)
        except Exception:  # noqa: BLE001 - a suggestion box must never show an error
            log.exception("prefix suggestions failed for %r", current)
            return []
        typed = current.strip().lower()
        choices = [app_commands.Choice(name=fit(f"{typed}… (any name starting with “{typed}”)", CHOICE_NAME),
                                       value=typed)] if names and typed else []
        choices += [app_commands.Choice(name=name.capitalize(), value=name) for name in names]
        return choices[:CHOICES]

    @app_commands.command(name="dinoinfo", description="Which model answers in this server, and how good it is")
    @app_commands.describe(chart="Also attach a chart of this server's model versions")
    async def dinoinfo(self, interaction: discord.Interaction, chart: bool = False) -> None:
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
        if not chart or interaction.guild_id is None:
            await interaction.response.send_message(embed=embed, ephemeral=True)
            return
        versions = await self.bot.store.versions.list(interaction.guild_id)
        if not versions:
            embed.add_field(name="History", value="No fine-tunes yet: nothing to chart.", inline=False)
            await interaction.response.send_message(embed=embed, ephemeral=True)
            return
        # The first chart imports matplotlib (about half a second): answer "thinking…" first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        png = await asyncio.to_thread(charts.history_png, history_points(versions, info.version))
        embed.set_image(url=f"attachment://{HISTORY_CHART}")
        await interaction.followup.send(embed=embed, file=discord.File(io.BytesIO(png), filename=HISTORY_CHART),
                                        ephemeral=True)


async def setup(bot: DinoBot) -> None:
    bot.add_dynamic_items(MoreButton)
    await bot.add_cog(Generate(bot))
