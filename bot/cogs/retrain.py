"""``/retrain`` (admins): fine-tune this server's model now, with live progress and a Cancel button.

The command only asks the training service for a job and then *watches* it: a background task
per reply follows ``job.updates()`` and edits the reply with a progress bar, then with a summary
once the job is over — with a chart of the losses per epoch and before/after. Every reply
watches independently, so a second ``/retrain`` while a job is
queued or running just follows that same job.

Discord rate-limits message edits, so a watcher edits at most once per
:data:`EDIT_INTERVAL` seconds (updates are "latest wins": a skipped snapshot is never needed, the next
edit shows the newest) and always sends the final state. An interaction token lives 15 minutes;
when it has expired, or any edit fails, the watcher logs it and stops editing — the job itself
never notices, it belongs to the service.

Who sees what: the progress and the summary are public (the server's model changes for everyone).
Refusals ("not enough names yet") and failures are private to the admin who asked, and a failure
caused by a bug shows an error id, never the exception's text.

A crash would leave a reply at "2 %" with a live Cancel button for good. So each reply is
remembered in the store (``live_replies``: the interaction's token and the message) until it
shows its final state; at the next start, every reply still remembered whose token is still
valid is edited to say the fine-tune was interrupted and what to do next — or, when the job is
still in the database and runs again by itself (a crash, not a shutdown), that it is restarting.
In a cluster a process only touches the replies of its own servers: the others' are live.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import re
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import StorageError
from bot.services import charts
from bot.services.records import LiveReply, Trigger
from bot.services.training.jobs import JobSnapshot, JobStatus, NotEnoughNames, Outcome, TrainingJob
from bot.ui.checks import admin_only, is_admin
from bot.ui.look import DINO_GREEN, EMBED_FIELD, fit, progress_bar, sentence
from bot.ui.replies import apology, errors_reported, send_ephemeral

if TYPE_CHECKING:
    from bot.app import DinoBot

log = logging.getLogger(__name__)

#: Minimum seconds between two edits of one reply (the final edit is never held back longer).
EDIT_INTERVAL = 1.0
#: How long shutdown waits for watchers to deliver their final edit before cancelling them.
SHUTDOWN_GRACE = 2.0
#: Discord accepts edits with an interaction's token for 15 minutes; a little is kept in hand.
TOKEN_LIFETIME = 15 * 60 - 30

RUNNING_BLUE = discord.Colour.blurple()
DISCARDED_ORANGE = discord.Colour.orange()
CHART_FILE = "fine-tune.png"
CANCELLED_GREY = discord.Colour.light_grey()
FAILED_RED = discord.Colour.red()


# ---------------------------------------------------------------------------------- embeds


def _seconds(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "estimating…"
    return "less than a second" if value < 1 else f"about {value:.0f} s"


def _loss(value: float | None) -> str:
    return f"{value:.3f}" if _finite(value) else "—"


def progress_embed(snap: JobSnapshot, header: str, queue_ahead: int = 0) -> discord.Embed:
    """The live view of a queued or running job: bar, pass (epoch), scores (losses), time left."""
    embed = discord.Embed(title="🦖 Fine-tuning this server's model", colour=RUNNING_BLUE)
    if snap.status is JobStatus.QUEUED:
        waiting = (f"Waiting for {queue_ahead} other fine-tune{'s' if queue_ahead != 1 else ''} to finish."
                   if queue_ahead else "Starting…")
        embed.description = fit(f"{header}\n{waiting}", EMBED_FIELD)
        return embed
    embed.description = fit(f"{header}\n`{progress_bar(snap.fraction)}` **{snap.percent} %**", EMBED_FIELD)
    if (p := snap.progress) is not None:
        embed.add_field(name="Pass over the names",
                        value=f"{p.epoch}/{p.epochs} · network {p.member + 1}/{p.members}")
        embed.add_field(name="Score (lower is better)",
                        value=f"its names {_loss(p.train_loss)} · names it never saw {_loss(p.val_loss)}")
        embed.add_field(name="Time left", value=_seconds(snap.eta))
    else:
        embed.add_field(name="Pass over the names", value="preparing the data…")
    return embed


KEEPS_MODEL = "This server keeps its current model."


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def verdict(status: JobStatus, outcome: Outcome) -> tuple[str, str, discord.Colour]:
    """(title, explanation, colour) of a finished job, in words an admin needs no ML for."""
    before, after = outcome.val_loss_before, outcome.val_loss_after
    if status is JobStatus.CANCELLED:
        return "⏹️ Fine-tune cancelled", f"{sentence(outcome.reason)} {KEEPS_MODEL}", CANCELLED_GREY
    if outcome.promoted:
        if not _finite(before):
            why = "The previous model could not be scored, so the new one answers in this server from now on."
        else:
            how = ("better than" if after < before else "as well as" if after == before
                   else "almost as well as (within the allowed margin)")
            why = (f"It predicts names it never saw {how} the previous model, and it has learnt this "
                   "server's names: it answers in this server from now on.")
        return f"✅ New model promoted: v{outcome.version}", why, DINO_GREEN
    if not _finite(after):
        why = f"The fine-tuned model came out broken, so it was thrown away. {KEEPS_MODEL}"
    else:
        why = (f"It predicts names it never saw worse than the current model (beyond the allowed "
               f"margin), so it was thrown away. {KEEPS_MODEL}")
    return "↩️ Fine-tune not promoted: the model is unchanged", why, DISCARDED_ORANGE


def summary_embed(snap: JobSnapshot) -> discord.Embed:
    """The final state: what the fine-tune used, how it scored, and whether it now serves."""
    outcome = snap.outcome or Outcome(False, str(snap.status))
    title, why, colour = verdict(snap.status, outcome)
    embed = discord.Embed(title=title, description=fit(why, EMBED_FIELD), colour=colour)
    if outcome.names_used:
        embed.add_field(name="Names used", value=f"{outcome.names_used} ({outcome.new_names} new)")
    if _finite(outcome.val_loss_before) or _finite(outcome.val_loss_after):
        embed.add_field(name="Score on names it never saw",
                        value=f"{_loss(outcome.val_loss_before)} → {_loss(outcome.val_loss_after)} "
                              "(lower is better)")
    if outcome.version is not None:
        state = "now serving this server" if outcome.promoted else "discarded"
        embed.add_field(name="Version", value=f"v{outcome.version} ({state})")
    if outcome.samples:
        samples = ", ".join(name.capitalize() for name in outcome.samples)
        embed.add_field(name="Names from the new model", value=fit(samples, EMBED_FIELD), inline=False)
    if outcome.seconds:
        embed.set_footer(text=f"Took {outcome.seconds:.1f} s")
    return embed


def failure_text(outcome: Outcome) -> str:
    """The private note to the admin when a fine-tune failed: its reason, or an error id."""
    if outcome.error_id is not None:
        return f"⚠️ The fine-tune failed. {KEEPS_MODEL} {apology(outcome.error_id)}"
    return f"⚠️ The fine-tune stopped: {sentence(outcome.reason)} {KEEPS_MODEL}"


def interrupted_embed() -> discord.Embed:
    """What an interrupted reply says after a restart: what happened, and what to do."""
    return discord.Embed(
        title="⚠️ Fine-tune interrupted",
        description=("DinoBot restarted while this fine-tune was running, so it stopped before it "
                     f"finished. {KEEPS_MODEL} Every name is still saved: run `/retrain` to start again."),
        colour=DISCARDED_ORANGE)


def restarting_embed() -> discord.Embed:
    """What an interrupted reply says when its job survived the crash and runs again by itself."""
    return discord.Embed(
        title="🔁 Fine-tune restarting",
        description=("DinoBot restarted while this fine-tune was running. It starts again by itself; "
                     "`/retrain` shows its progress."),
        colour=RUNNING_BLUE)


async def summary_chart(job: TrainingJob, snap: JobSnapshot) -> discord.File | None:
    """The losses per epoch and the validation before/after as a PNG, for a job that trained to
    the end (drawn in a worker thread); None for a job that did not, or if drawing fails."""
    outcome = snap.outcome
    if snap.status is not JobStatus.DONE or outcome is None or outcome.val_loss_before is None:
        return None
    try:
        png = await asyncio.to_thread(charts.fine_tune_png, job.history, outcome.val_loss_before,
                                      outcome.val_loss_after)
    except Exception:  # noqa: BLE001 - a chart is a bonus: the summary goes out without it
        log.exception("guild %s: could not draw the chart of fine-tune #%d", job.guild_id, job.id)
        return None
    return discord.File(io.BytesIO(png), filename=CHART_FILE)


def not_enough_text(exc: NotEnoughNames) -> str:
    missing = exc.needed - exc.have
    return (f"🦴 Not enough names to learn from yet: fine-tuning needs at least **{exc.needed}** approved "
            f"names and this server has **{exc.have}** ({missing} more needed). "
            "Members can add names with `/submit`.")


# ---------------------------------------------------------------------------------- cancel button


class CancelButton(discord.ui.DynamicItem[discord.ui.Button], template=r"dino:retrain:cancel:(?P<guild>\d+)"):
    """Stops this server's fine-tune. Keyed by guild (one job per guild), so it survives restarts."""

    def __init__(self, guild_id: int) -> None:
        self.guild_id = guild_id
        super().__init__(discord.ui.Button(label="Cancel", emoji="⏹️", style=discord.ButtonStyle.danger,
                                           custom_id=f"dino:retrain:cancel:{guild_id}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> "CancelButton":
        return cls(int(match["guild"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            await cancel_fine_tune(interaction)


async def cancel_fine_tune(interaction: discord.Interaction) -> None:
    """Re-check that the clicker is an admin (anyone can click), then ask the service to stop."""
    await is_admin(interaction)  # raises NotAdmin / NoPrivateMessage, reported politely
    bot: DinoBot = interaction.client  # type: ignore[assignment]
    assert interaction.guild_id is not None  # is_admin refuses DMs
    if await bot.trainer.cancel(interaction.guild_id, interaction.user.id):
        log.info("guild %d: fine-tune cancelled by %d", interaction.guild_id, interaction.user.id)
        await send_ephemeral(interaction, "⏹️ Stopping the fine-tune; the model stays as it was.")
    else:
        await send_ephemeral(interaction, "There is no fine-tune running in this server any more.")


def cancel_view(guild_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(guild_id))
    return view


# ---------------------------------------------------------------------------------- the cog


class Retrain(commands.Cog):
    """``/retrain`` and the watchers that keep its replies up to date."""

    def __init__(self, bot: DinoBot, edit_interval: float = EDIT_INTERVAL) -> None:
        self.bot = bot
        self.edit_interval = edit_interval  # tests shorten it to see many edits quickly
        self._watchers: set[asyncio.Task[None]] = set()

    async def cog_unload(self) -> None:
        """Let watchers deliver their final edit (shutdown cancels jobs first), then stop them."""
        if not self._watchers:
            return
        _, pending = await asyncio.wait(set(self._watchers), timeout=SHUTDOWN_GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def cog_load(self) -> None:
        await self.finish_interrupted_replies()

    @app_commands.command(name="retrain", description="Fine-tune this server's model on its names now (admins)")
    @admin_only()
    async def retrain(self, interaction: discord.Interaction) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None  # admin_only() refuses DMs
        already = self.bot.trainer.job(guild_id)
        try:
            job = await self.bot.trainer.request(guild_id, interaction.user.id, Trigger.ADMIN)
        except NotEnoughNames as exc:  # other errors go to the central handler, privately too
            await send_ephemeral(interaction, not_enough_text(exc))
            return
        answer = await interaction.response.defer(thinking=True)
        if answer is not None and answer.message_id is not None:
            await self._remember(interaction, answer.message_id)
        header = self._header(job, interaction.user.id, joined=job is already)
        self._watch(job, interaction, header)

    async def _remember(self, interaction: discord.Interaction, message_id: int) -> None:
        """Record the reply before its first edit, so a crash from now on is told at restart."""
        assert interaction.guild_id is not None
        await self.bot.store.live_replies.remember(LiveReply(
            interaction.id, interaction.guild_id, interaction.application_id, interaction.token, message_id,
            interaction.created_at.timestamp()))

    async def finish_interrupted_replies(self) -> None:
        """At start: tell every reply a crash left behind that its fine-tune was interrupted.

        Replies whose token has expired can no longer be edited; they are only forgotten.
        """
        for reply in await self.bot.store.live_replies.all():
            if not self.bot.config.shards.owns(reply.guild_id):
                continue  # another process's server: its reply may well be live
            if time.time() - reply.created_at < TOKEN_LIFETIME:
                webhook = discord.Webhook.partial(reply.application_id, reply.token, client=self.bot)
                resumed = self.bot.trainer.job(reply.guild_id) is not None
                try:
                    await webhook.edit_message(reply.message_id, content=None, view=None,
                                               embed=restarting_embed() if resumed else interrupted_embed())
                    log.info("guild %d: told the /retrain reply %d that its fine-tune was interrupted",
                             reply.guild_id, reply.message_id)
                except discord.HTTPException as exc:
                    log.warning("guild %d: could not tell the /retrain reply %d that its fine-tune was "
                                "interrupted (%s %s)", reply.guild_id, reply.message_id, exc.status, exc.text)
            else:
                log.info("guild %d: the interrupted /retrain reply %d is too old to edit (Discord allows "
                         "15 min)", reply.guild_id, reply.message_id)
            await self.bot.store.live_replies.forget(reply.interaction_id)

    @staticmethod
    def _header(job: TrainingJob, user_id: int, *, joined: bool) -> str:
        if not joined:
            return f"Started by <@{user_id}>."
        who = f"<@{job.requested_by}>" if job.requested_by else "the schedule"
        return f"A fine-tune is already under way here (asked by {who}), so here is its progress."

    def _watch(self, job: TrainingJob, interaction: discord.Interaction, header: str) -> None:
        task = asyncio.create_task(self._follow(job, interaction, header),
                                   name=f"dinobot-retrain-watch-{job.id}-{interaction.id}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _follow(self, job: TrainingJob, interaction: discord.Interaction, header: str) -> None:
        """Keep the reply up to date; then forget it, unless cancelled before its final state.

        Cancelled (the bot is going down faster than the final edit): the reply stays remembered,
        and the next start says the fine-tune was interrupted.
        """
        try:
            await self._edit_until_done(job, interaction, header)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a watcher must never take anything else down
            log.exception("guild %s: watching fine-tune #%d failed; no more edits", job.guild_id, job.id)
        try:
            await self.bot.store.live_replies.forget(interaction.id)
        except StorageError as exc:
            log.warning("guild %s: could not forget the /retrain reply (%s)", job.guild_id, exc)

    async def _edit_until_done(self, job: TrainingJob, interaction: discord.Interaction, header: str) -> None:
        """Edit the reply as the job progresses, throttled, ending with the summary."""
        async with contextlib.aclosing(job.updates()) as updates:
            last_edit, shown = -math.inf, None
            async for snap in updates:
                if not snap.status.finished:
                    await self._pause_until(job, last_edit + self.edit_interval)
                    snap = job.snapshot  # the newest, which may be the final one
                if snap is shown:  # already on screen (picked up early after a pause)
                    continue
                if not await self._show(job, interaction, snap, header):
                    return
                last_edit, shown = time.monotonic(), snap
                if snap.status.finished:
                    return

    @staticmethod
    async def _pause_until(job: TrainingJob, when: float) -> None:
        """Sleep until ``when`` (monotonic), waking early if the job finishes meanwhile."""
        delay = when - time.monotonic()
        if delay > 0 and not job.done:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(job.wait(), delay)

    async def _show(self, job: TrainingJob, interaction: discord.Interaction, snap: JobSnapshot,
                    header: str) -> bool:
        """One edit of the reply; False once the reply can no longer be edited."""
        if snap.status is JobStatus.FAILED:
            return await self._show_failure(job, interaction, snap)
        attachments: list[discord.File] = []
        if snap.status.finished:
            embed, view = summary_embed(snap), None
            if (chart := await summary_chart(job, snap)) is not None:
                embed.set_image(url=f"attachment://{CHART_FILE}")
                attachments.append(chart)
        else:
            embed, view = progress_embed(snap, header, self._queue_ahead(job)), cancel_view(job.guild_id)
        if interaction.is_expired():
            log.info("guild %s: the reply to /retrain is too old to edit (Discord allows 15 min); "
                     "fine-tune #%d goes on without live progress", job.guild_id, job.id)
            return False
        try:
            await interaction.edit_original_response(content=None, embed=embed, view=view, attachments=attachments)
        except discord.HTTPException as exc:
            log.warning("guild %s: could not edit the /retrain reply (%s); fine-tune #%d goes on "
                        "without live progress", job.guild_id, exc, job.id)
            return False
        return True

    @staticmethod
    async def _show_failure(job: TrainingJob, interaction: discord.Interaction, snap: JobSnapshot) -> bool:
        """A failure is the admin's business: the public reply goes, a private note says why."""
        try:
            with contextlib.suppress(discord.NotFound):
                await interaction.delete_original_response()
            text = failure_text(snap.outcome or Outcome(False, "failed"))
            await interaction.followup.send(text, ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("guild %s: could not report the failure of fine-tune #%d (%s)",
                        job.guild_id, job.id, exc)
        return False

    def _queue_ahead(self, job: TrainingJob) -> int:
        queued = self.bot.trainer.queued_guilds()
        return queued.index(job.guild_id) if job.guild_id in queued else 0


async def setup(bot: DinoBot) -> None:
    bot.add_dynamic_items(CancelButton)
    await bot.add_cog(Retrain(bot))
