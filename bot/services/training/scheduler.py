"""The periodic scheduler: every ``schedule_minutes``, fine-tune the servers that have enough new
names.

Only servers this process owns (on its shards) are considered, so in a cluster each server is
scheduled by exactly one process; the job row in the database still guards against two. Each
tick also resumes the process's unfinished jobs (a run whose lease was lost to an outage).
A server whose last attempt was discarded is left alone until it has ``min_new_names`` more
approved names, so a server whose names never help is not retrained every tick. A server whose
fine-tune *failed* is retried with backoff: after ``retry_minutes``, then twice that after each
further failure, up to ``max_retry_minutes`` (in memory: a restart tries again at once). Its
last failure is kept for the admin (``/settings`` shows why, and when the next try is).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.services.records import Status, Trigger, VersionStatus
from bot.services.training.jobs import JobStatus, NotEnoughNames, TrainingJob

if TYPE_CHECKING:
    from bot.services.training.service import TrainingService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """A server's run of failed fine-tunes: how many in a row, the last reason, the next try."""

    count: int
    reason: str
    error_id: str | None  # for a failure on a bug: the id its traceback is logged under
    retry_at: float  # the service clock's time (unix seconds) before which it is not scheduled


class Scheduler:
    """Asks the training service for fine-tunes on a timer; the service's queue does the rest."""

    def __init__(self, service: TrainingService) -> None:
        self.service = service
        self._task: asyncio.Task | None = None
        self._failures: dict[int, Failure] = {}

    def record(self, job: TrainingJob) -> None:
        """Note how a job of any trigger ended: a failure starts or extends the server's backoff,
        a fine-tune that ran to a verdict ends it (a cancel changes nothing)."""
        settings, guild_id = self.service.settings, job.guild_id
        if job.status is JobStatus.DONE:
            self._failures.pop(guild_id, None)
        elif job.status is JobStatus.FAILED:
            count = self._failures[guild_id].count + 1 if guild_id in self._failures else 1
            wait = min(settings.max_retry_minutes, settings.retry_minutes * 2 ** (count - 1)) * 60.0
            reason = job.outcome.reason if job.outcome else "failed"
            error_id = job.outcome.error_id if job.outcome else None
            self._failures[guild_id] = Failure(count, reason, error_id, self.service.now() + wait)
            log.warning("guild %d: fine-tune failed %d time(s) in a row; the schedule tries again in %.0f min",
                        guild_id, count, wait / 60)

    def failure(self, guild_id: int) -> Failure | None:
        """The server's current run of failures, if its last fine-tune failed."""
        return self._failures.get(guild_id)

    def start(self) -> None:
        """Start ticking, unless the operator set ``schedule_minutes`` to 0."""
        if self._task is None and self.service.settings.schedule_minutes > 0:
            self._task = asyncio.create_task(self._tick_forever(), name="dinobot-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> list[TrainingJob]:
        """Request fine-tunes for the guilds the schedule says are due; the jobs queued."""
        service = self.service
        due = await service.store.names.guilds_with_new(service.settings.min_new_names,
                                                        only_scheduled=True)
        jobs = []
        now = service.now()
        for guild_id in due:
            if not service.owns(guild_id):
                continue
            failure = self._failures.get(guild_id)
            if failure is not None and now < failure.retry_at:
                continue
            if service.job(guild_id) is not None or await self._recently_discarded(guild_id):
                continue
            try:
                jobs.append(await service.request(guild_id, None, Trigger.SCHEDULE))
            except NotEnoughNames as exc:
                log.info("guild %d not scheduled: %s", guild_id, exc)
        return jobs

    async def _recently_discarded(self, guild_id: int) -> bool:
        """Whether the last attempt was discarded and too few names arrived since."""
        store = self.service.store
        versions = await store.versions.list(guild_id)
        if not versions or versions[-1].status is VersionStatus.PROMOTED:
            return False
        approved = await store.names.count(guild_id, Status.APPROVED)
        return approved - versions[-1].names_used < self.service.settings.min_new_names

    async def _tick_forever(self) -> None:
        interval = self.service.settings.schedule_minutes * 60.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.service.resume()
                jobs = await self.run_once()
            except Exception:  # the next tick may well work; never let the loop die
                log.exception("scheduled fine-tune check failed")
                continue
            if jobs:
                log.info("scheduler queued fine-tunes for guilds %s", [j.guild_id for j in jobs])
