"""``/models`` (moderators): this server's model versions, and ``use:N`` to serve an earlier one.

Listing shows every fine-tune (date, names used, validation loss, promoted or discarded) and
which version serves now. ``use:N`` is the undo for a bad promotion: it serves an earlier
promoted version (``use:0``: the shipped base model). The registry checks and loads it, the
store records the choice with an audit entry, so it survives a restart, and the next fine-tune
starts from it. A discarded or unknown version is refused with the reason.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.records import ModelVersion, VersionStatus
from bot.ui.checks import admin_only
from bot.ui.look import DINO_GREEN, EMBED_DESCRIPTION, fit, when
from bot.ui.replies import send_ephemeral

if TYPE_CHECKING:
    from bot.app import DinoBot
    from bot.services.registry import ServedModel

log = logging.getLogger(__name__)

LISTED = 20  # newest versions listed; the embed stays well inside Discord's limits
SERVED = "◀ **served**"


def _loss(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def version_line(v: ModelVersion, served: int | None) -> str:
    status = "✅ promoted" if v.status is VersionStatus.PROMOTED else "↩️ discarded"
    line = (f"**v{v.version}** · {when(v.finished_at, 'd')} · {v.names_used} names · "
            f"val {_loss(v.val_loss_after)} · {status}")
    return line + (f" {SERVED}" if v.version == served else "")


def models_embed(versions: list[ModelVersion], served: int | None, base_loss: float | None) -> discord.Embed:
    """Newest first, then the base model; the served one marked."""
    shown = list(reversed(versions))[:LISTED]
    lines = [version_line(v, served) for v in shown]
    if len(versions) > len(shown):
        lines.append(f"… and {len(versions) - len(shown)} older versions")
    base = f"**v0** · the shipped base model · val {_loss(base_loss)}"
    lines.append(base + (f" {SERVED}" if served is None else ""))
    if not versions:
        lines.insert(0, "No fine-tunes yet: the base model serves this server. `/retrain` makes the first.")
    embed = discord.Embed(title="🗂️ This server's model versions", description=fit("\n".join(lines), EMBED_DESCRIPTION),
                          colour=DINO_GREEN)
    embed.set_footer(text="Validation loss in nats per letter, lower is better · /models use:N serves version N "
                          "(0: the base model)")
    return embed


def used_text(version: int | None, served: ServedModel) -> str:
    if version is None:
        what = "the shipped **base model**"
    else:
        what = (f"**v{version}** (trained {when(served.trained_at)}, validation loss "
                f"{_loss(served.val_loss)} nats/letter)")
    return (f"▶️ Now serving {what}. The change is in the audit log and survives a restart; the next "
            "fine-tune starts from it, and a newer promoted version then takes over.")


class Models(commands.Cog):
    """Versions for moderators: list them, serve an earlier one."""

    def __init__(self, bot: DinoBot) -> None:
        self.bot = bot

    @app_commands.command(name="models", description="This server's model versions; use:N serves an earlier "
                                                     "one (moderators)")
    @app_commands.describe(use="Serve this version instead (0: the base model); leave it out to list them")
    @admin_only()
    async def models(self, interaction: discord.Interaction,
                     use: app_commands.Range[int, 0, 1_000_000] | None = None) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None  # admin_only() refuses DMs
        current = await self.bot.registry.get(guild_id)
        if use is None:
            versions = await self.bot.store.versions.list(guild_id)
            embed = models_embed(versions, current.version, self.bot.registry.base.val_loss)
            await interaction.response.send_message(embed=embed, ephemeral=True)
            return
        version = use or None
        if version == current.version:
            label = "The base model" if version is None else f"v{version}"
            await send_ephemeral(interaction, f"{label} already serves this server; nothing changed.")
            return
        if self.bot.trainer.job(guild_id) is not None:
            await send_ephemeral(interaction, "A fine-tune is under way here; wait for it to finish (or cancel it) "
                                              "before choosing a version. Nothing changed.")
            return
        served = await self.bot.registry.use(guild_id, version, interaction.user.id)  # audited; raises if refused
        log.info("guild %s: user %s chose to serve version %s", guild_id, interaction.user.id, version)
        await send_ephemeral(interaction, used_text(version, served))


async def setup(bot: DinoBot) -> None:
    await bot.add_cog(Models(bot))
