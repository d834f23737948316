"""``/submit`` and ``/names list|top|remove``: how a server builds its own corpus of names.

Validation, duplicates, known dinosaurs and the daily limit are the store's job: its errors
carry member-facing messages and reach the tree's error handler (``report_error``) unchanged.
This cog only decides who may see what, and words the answers.

Who sees what
    Approved names are the server's public corpus: anyone may list them, and a successful
    submission that is approved at once is announced in the channel. Pending, rejected and
    removed names are moderation material (a removed name was removed for a reason), so only
    admins may list them, and every such reply is ephemeral, as is a submission awaiting review.
"""
from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.services.records import FavouriteName, Status, Submission
from bot.ui.checks import admin_only, can_moderate, in_server, submit_cooldown
from bot.ui.look import CHOICES, DINO_GREEN, EMBED_DESCRIPTION, EMBED_TITLE, describe_likeness, fit, when
from bot.ui.replies import send_ephemeral

if TYPE_CHECKING:
    from bot.app import DinoBot

log = logging.getLogger(__name__)

NAME_INPUT_MAX = 100  # generous, so a too-long name gets the store's explanation, not a client error
LATEST_SHOWN = 20
TOP_SHOWN = 10
NAMES_FILE = "names.txt"

ListStatus = Literal["approved", "pending", "rejected", "removed", "all"]


# ---------------------------------------------------------------------- shared helpers


async def how_dinosaur_like(bot: DinoBot, guild_id: int, name: str) -> str:
    """The server's model's verdict on ``name`` as a percentile of real dinosaur names."""
    return describe_likeness((await bot.likeness.rank(guild_id, name)).percentile)


# ---------------------------------------------------------------------- /submit


def submitted_text(sub: Submission, verdict: str) -> str:
    name = f"**{sub.name.capitalize()}**"
    if sub.status is Status.PENDING:
        return (f"📝 {name} is saved and awaits review by a moderator; once approved it joins this "
                f"server's list and its training names.\nThis server's model finds it {verdict}.")
    return f"🦕 {name} joins this server's names!\nThis server's model finds it {verdict}."


# ---------------------------------------------------------------------- /names list


def status_label(status: ListStatus) -> str:
    return "names" if status == "all" else f"{status} names"


def names_embed(guild_name: str, status: ListStatus, total: int, latest: list[Submission]) -> discord.Embed:
    """Count and newest names. Mentions in embeds never ping, and names are a–z anyway."""
    what = status_label(status)
    if not latest:
        hint = " Invent one with `/submit`!" if status in ("approved", "all") else ""
        description = f"No {what} yet.{hint}"
    else:
        lines = [f"**{total}** {what}; the newest:"]
        for sub in latest:
            tag = f" · {sub.status}" if status == "all" else ""
            lines.append(f"**{sub.name.capitalize()}** · {when(sub.created_at)}{tag}")
        description = "\n".join(lines)
    embed = discord.Embed(title=fit(f"🦕 {what.capitalize()} in {guild_name}", EMBED_TITLE),
                          description=fit(description, EMBED_DESCRIPTION), colour=DINO_GREEN)
    if total > len(latest):
        embed.set_footer(text=f"Showing the newest {len(latest)} of {total}. Use file:True for the whole list.")
    return embed


def names_file(status: ListStatus, names: list[Submission]) -> discord.File:
    """One name per line, alphabetical: a corpus file ``model`` can read. ``all`` adds a status column."""
    if status == "all":
        lines = [f"{sub.name}\t{sub.status}" for sub in names]
    else:
        lines = [sub.name for sub in names]
    return discord.File(io.BytesIO(("\n".join(lines) + "\n").encode("utf-8")), filename=NAMES_FILE)


# ---------------------------------------------------------------------- /names top


def top_embed(guild_name: str, favourites: list[FavouriteName]) -> discord.Embed:
    """The most kept approved names, each with its first keeper (shown, never pinged)."""
    if not favourites:
        description = "No kept names yet. Press ⭐ **Keep** on a `/dinoname` reply to keep one!"
    else:
        medals = {1: "🥇", 2: "🥈", 3: "🥉"}
        lines = []
        for rank, fav in enumerate(favourites, start=1):
            keeps = f"{fav.keeps} keep{'s' if fav.keeps != 1 else ''}"
            lines.append(f"{medals.get(rank, f'{rank}.')} **{fav.name.capitalize()}** · {keeps} · "
                         f"first kept by <@{fav.first_by}> {when(fav.first_at)}")
        description = "\n".join(lines)
    return discord.Embed(title=fit(f"⭐ Favourite names in {guild_name}", EMBED_TITLE),
                         description=fit(description, EMBED_DESCRIPTION), colour=DINO_GREEN)


class Corpus(commands.Cog):
    """A server's own names: members submit them, everyone lists them, admins remove them."""

    names = app_commands.Group(name="names", description="This server's submitted dinosaur names",
                               guild_only=True)

    def __init__(self, bot: DinoBot) -> None:
        self.bot = bot

    @app_commands.command(name="submit", description="Add a dinosaur name you invented to this server's names")
    @app_commands.describe(name="3–32 letters a–z, e.g. Glimmerosaurus")
    @app_commands.guild_only()
    @submit_cooldown()
    @in_server()  # closest to the function, so it runs first: a DM never uses up the cooldown
    async def submit(self, interaction: discord.Interaction,
                     name: app_commands.Range[str, 1, NAME_INPUT_MAX]) -> None:
        assert interaction.guild_id is not None
        sub = await self.bot.store.names.submit(interaction.guild_id, interaction.user.id, name)  # committed
        verdict = await how_dinosaur_like(self.bot, interaction.guild_id, sub.name)
        text = fit(submitted_text(sub, verdict))
        log.info("guild %s: user %s submitted %r (%s)", sub.guild_id, sub.submitter_id, sub.name, sub.status)
        await interaction.response.send_message(text, ephemeral=sub.status is Status.PENDING)

    @names.command(name="list", description="How many names this server has, and the newest ones")
    @app_commands.describe(status="Which names (default approved; the others are for moderators)",
                           file="Also attach the whole list as names.txt")
    @in_server()
    async def list_names(self, interaction: discord.Interaction, status: ListStatus = "approved",
                         file: bool = False) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        private = status != "approved"
        if private and not await can_moderate(interaction):
            raise app_commands.CheckFailure(
                "Only moderators (Manage Server) can list pending, rejected or removed names; "
                "everyone can list the approved ones.")
        store = self.bot.store
        wanted = None if status == "all" else status
        total = await store.names.count(guild_id, wanted)
        latest = await store.names.recent(guild_id, wanted, limit=LATEST_SHOWN)
        guild_name = interaction.guild.name if interaction.guild else "this server"
        embed = names_embed(guild_name, status, total, latest)
        attachments = []
        if file and total:
            attachments.append(names_file(status, await store.names.list(guild_id, wanted)))
        await interaction.response.send_message(embed=embed, files=attachments, ephemeral=private)

    @names.command(name="top", description="This server's favourite names: the most kept first")
    @in_server()
    async def top(self, interaction: discord.Interaction) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        favourites = await self.bot.store.keeps.top(guild_id, limit=TOP_SHOWN)
        guild_name = interaction.guild.name if interaction.guild else "this server"
        await interaction.response.send_message(embed=top_embed(guild_name, favourites))

    @names.command(name="remove", description="Take a name off this server's list (moderators)")
    @app_commands.describe(name="The name to remove; it is kept in the records, marked removed")
    @admin_only()
    async def remove(self, interaction: discord.Interaction,
                     name: app_commands.Range[str, 1, NAME_INPUT_MAX]) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        store = self.bot.store
        before = await store.names.get(guild_id, name)
        shown = f"**{before.name.capitalize()}**"
        if before.status is Status.REMOVED:
            await send_ephemeral(interaction, f"{shown} was already removed; nothing changed.")
            return
        await store.names.set_status(guild_id, before.id, Status.REMOVED, interaction.user.id)  # audited
        log.info("guild %s: user %s removed %r (was %s)", guild_id, interaction.user.id, before.name, before.status)
        await send_ephemeral(interaction, f"🗑️ Removed {shown} (it was {before.status}). Future fine-tunes "
                                          "will not use it; it stays in the records and the audit log.")

    @remove.autocomplete("name")
    async def suggest_removable(self, interaction: discord.Interaction,
                                current: str) -> list[app_commands.Choice[str]]:
        """The server's names starting with what was typed, for moderators only (pending and
        rejected names are not for everyone's eyes)."""
        if interaction.guild_id is None or not await can_moderate(interaction):
            return []
        names = await self.bot.store.names.starting_with(interaction.guild_id, current, limit=CHOICES)
        return [app_commands.Choice(name=name.capitalize(), value=name) for name in names]


async def setup(bot: DinoBot) -> None:
    await bot.add_cog(Corpus(bot))
