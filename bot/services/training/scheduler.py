"""The periodic scheduler: every ``schedule_minutes``, fine-tune the servers that have enough new
names.

Only servers this process owns (on its shards) are considered, so in a cluster each server is
scheduled by exactly one process; the job row in the database still guards against two. Each
tick also resumes the process's unfinished jobs (a run whose lease was lost to an outage).
A server whose last attempt was discarded is left alone until it has ``min_new_names`` more
approved names, so a server whose names never help is not retrained every tick.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from bot.services.records import Status, Trigger, VersionStatus
from bot.services.training.jobs import NotEnoughNames, TrainingJob

if TYPE_CHECKING:
    from bot.services.training.service import TrainingService

log = logging.getLogger(__name__)


class Scheduler:
    """Asks the training service for fine-tunes on a timer; the service's queue does the rest."""

    def __init__(self, service: TrainingService) -> None:
        self.service = service
        self._task: asyncio.Task | None = None

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
        for guild_id in due:
            if not service.owns(guild_id):
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
