"""``/review`` (approve or reject pending names with buttons) and ``/settings`` (admins).

The review screen is ephemeral: pending names are not public until a moderator approves them.
Its buttons are :class:`discord.ui.DynamicItem` s carrying the submission id in their custom
id, so a review screen still works after the bot restarts; every click checks the clicker's
permission again, because a button is just a custom id anyone's client could send.
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.corpus import how_dinosaur_like
from bot.services.records import AuditEntry, GuildSettings, Status, Submission
from bot.ui.checks import admin_only, is_admin
from bot.ui.look import DINO_GREEN, EMBED_DESCRIPTION, EMBED_FIELD, fit, when
from bot.ui.replies import errors_reported, send_ephemeral

if TYPE_CHECKING:
    from bot.app import DinoBot

log = logging.getLogger(__name__)

Strength = Literal["subtle", "normal", "strong"]
STRENGTH_WORDS = {
    "subtle": "fine-tunes nudge the model; this server's names show now and then in `/dinoname`.",
    "normal": "fine-tunes make this server's style plain to see in `/dinoname` (about one name in six for "
              "a distinctive style) while the names stay dinosaur-like.",
    "strong": "fine-tunes lean hard on this server's names; `/dinoname` follows its style most, at some "
              "cost to the classic dinosaur sound.",
}

REVIEW_OFF = ("Review is off in this server: names are approved at once. "
              "Turn it on with `/settings review:True`.")
ALL_REVIEWED = "🎉 All reviewed: no names are waiting."


# ---------------------------------------------------------------------- the review screen


class ReviewButton(discord.ui.DynamicItem[discord.ui.Button],
                   template=r"dino:review:(?P<action>approve|reject):(?P<id>\d{1,19})"):
    """Approve or reject one submission; everything it needs is in its custom id."""

    STYLES = {"approve": ("Approve", "✅", discord.ButtonStyle.success),
              "reject": ("Reject", "🗑️", discord.ButtonStyle.danger)}

    def __init__(self, action: str, submission_id: int) -> None:
        self.action, self.submission_id = action, submission_id
        label, emoji, style = self.STYLES[action]
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style,
                                           custom_id=f"dino:review:{action}:{submission_id}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> "ReviewButton":
        return cls(match["action"], int(match["id"]))

    @property
    def status(self) -> Status:
        return Status.APPROVED if self.action == "approve" else Status.REJECTED

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            await is_admin(interaction)  # raises NotAdmin: nothing changes
            await decide(interaction, self.submission_id, self.status)


async def decide(interaction: discord.Interaction, submission_id: int, status: Status) -> None:
    """Record the decision (unless another moderator already made one) and show the next name."""
    bot: DinoBot = interaction.client  # type: ignore[assignment]
    guild_id, actor = interaction.guild_id, interaction.user.id
    assert guild_id is not None  # is_admin refused DMs
    sub = await bot.store.names.set_status(guild_id, submission_id, status, actor, only_from=Status.PENDING)
    name = f"**{sub.name.capitalize()}**"
    if sub.status is status and sub.status_changed_by == actor:
        log.info("guild %s: user %s %s %r", guild_id, actor, status, sub.name)
        note = f"{'✅' if status is Status.APPROVED else '🗑️'} {status.value.capitalize()} {name}."
    else:
        note = f"ℹ️ {name} was already {sub.status}; nothing changed."
    content, embed, view = await review_screen(bot, guild_id)
    await interaction.response.edit_message(content=fit(f"{note}\n{content}".strip()), embed=embed,
                                            view=view)


async def review_screen(bot: DinoBot, guild_id: int) -> tuple[str, discord.Embed | None, discord.ui.View | None]:
    """(content, embed, buttons) for the oldest pending name, or the all-done text."""
    queue = await bot.store.names.pending(guild_id, limit=1)
    if not queue:
        return ALL_REVIEWED, None, None
    waiting = await bot.store.names.count(guild_id, Status.PENDING)
    sub = queue[0]
    embed = pending_embed(sub, await how_dinosaur_like(bot, guild_id, sub.name), waiting)
    view = discord.ui.View(timeout=None)
    view.add_item(ReviewButton("approve", sub.id))
    view.add_item(ReviewButton("reject", sub.id))
    return "", embed, view


def pending_embed(sub: Submission, verdict: str, waiting: int) -> discord.Embed:
    """One pending name. The submitter is a mention in an embed: shown, never pinged."""
    description = (f"Submitted by <@{sub.submitter_id}> {when(sub.created_at)}.\n"
                   f"This server's model finds it {verdict}.")
    embed = discord.Embed(title=f"📝 {sub.name.capitalize()}", description=fit(description, EMBED_DESCRIPTION),
                          colour=DINO_GREEN)
    more = waiting - 1
    embed.set_footer(text=f"Oldest first · {more} more waiting" if more else "Oldest first · the last one waiting")
    return embed


# ---------------------------------------------------------------------- /settings


def settings_embed(bot: DinoBot, settings: GuildSettings, pending: int,
                   last_change: AuditEntry | None) -> discord.Embed:
    """The server's switches, each with what it means in practice."""
    if settings.review_required:
        review = f"**On**: new names wait for a moderator's `/review` ({pending} waiting)."
    else:
        review = "**Off**: new names are approved at once."
        if pending:
            review += f" {pending} names from when it was on still wait for `/review`."
    training = bot.config.training
    if not settings.schedule_enabled:
        schedule = "**Off**: this server's model changes only with `/retrain`."
    elif training.schedule_minutes <= 0:
        schedule = "**On**, but the bot's operator has switched the scheduler off for every server."
    else:
        schedule = (f"**On**: fine-tuned automatically once {training.min_new_names} new approved names "
                    f"have arrived (checked every {training.schedule_minutes:g} min).")
    if (failure := bot.trainer.scheduler.failure(settings.guild_id)) is not None:
        schedule += f"\n⚠️ The last fine-tune {failure.reason}"
        schedule += f" (error id `{failure.error_id}`)." if failure.error_id else "."
        if settings.schedule_enabled and training.schedule_minutes > 0:
            schedule += f" The schedule tries again {when(failure.retry_at)}; `/retrain` tries now."
    embed = discord.Embed(title="⚙️ DinoBot settings for this server", colour=DINO_GREEN)
    embed.add_field(name="Review (`review`)", value=fit(review, EMBED_FIELD), inline=False)
    embed.add_field(name="Scheduled fine-tuning (`scheduled_training`)", value=fit(schedule, EMBED_FIELD),
                    inline=False)
    embed.add_field(name="Strength (`strength`)", value=f"**{settings.strength.capitalize()}**: "
                    f"{STRENGTH_WORDS[settings.strength]}", inline=False)
    if last_change is not None:  # a mention in an embed is shown, never pinged
        embed.add_field(name="Last changed", value=f"by <@{last_change.actor_id}> {when(last_change.created_at)}",
                        inline=False)
    return embed


def describe_changes(old: GuildSettings, new: GuildSettings) -> str:
    labels = {"review_required": "Review", "schedule_enabled": "Scheduled fine-tuning", "strength": "Strength"}
    changed = [f"{label}: {_on(getattr(old, field))} → **{_on(getattr(new, field))}**"
               for field, label in labels.items() if getattr(old, field) != getattr(new, field)]
    return "Updated. " + "; ".join(changed) + "." if changed else "Nothing to change: the settings were already so."


def _on(value: bool | str) -> str:
    if isinstance(value, str):
        return value
    return "on" if value else "off"


class Review(commands.Cog):
    """Moderation: the review queue and the server's switches."""

    def __init__(self, bot: DinoBot) -> None:
        self.bot = bot

    @app_commands.command(name="review", description="Approve or reject names waiting for review (moderators)")
    @admin_only()
    async def review(self, interaction: discord.Interaction) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        settings = await self.bot.store.settings.get(guild_id)
        content, embed, view = await review_screen(self.bot, guild_id)
        if not settings.review_required:
            if view is None:
                await send_ephemeral(interaction, REVIEW_OFF)
                return
            content = "Review is off now, but these names still wait from when it was on."
        kwargs = {"embed": embed} if embed else {}
        if view is not None:
            kwargs["view"] = view
        await interaction.response.send_message(content or None, ephemeral=True, **kwargs)

    @app_commands.command(name="settings", description="Show or change DinoBot's settings for this server (moderators)")
    @app_commands.describe(review="Hold new names for a moderator's approval (/review)",
                           scheduled_training="Fine-tune this server's model automatically as names arrive",
                           strength="How strongly fine-tunes make this server's names show in /dinoname")
    @admin_only()
    async def settings(self, interaction: discord.Interaction, review: bool | None = None,
                       scheduled_training: bool | None = None, strength: Strength | None = None) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        store = self.bot.store
        changes = {field: value for field, value in (("review_required", review),
                                                     ("schedule_enabled", scheduled_training),
                                                     ("strength", strength))
                   if value is not None}
        old = await store.settings.get(guild_id)
        new = await store.settings.update(guild_id, interaction.user.id, **changes) if changes else old  # audited
        pending = await store.names.count(guild_id, Status.PENDING)
        last_change = next(iter(await store.audit.recent(guild_id, limit=1, action="settings.update")), None)
        content = describe_changes(old, new) if changes else ""
        if new != old:
            log.info("guild %s: user %s changed settings %s", guild_id, interaction.user.id, changes)
        embed = settings_embed(self.bot, new, pending, last_change)
        await interaction.response.send_message(content or None, embed=embed, ephemeral=True)


async def setup(bot: DinoBot) -> None:
    bot.add_dynamic_items(ReviewButton)
    await bot.add_cog(Review(bot))
