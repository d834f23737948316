"""Holding a fine-tune job's database lease: claim it (waiting if need be), keep it, notice losing it.

The lease, not this process's memory, is what keeps a fine-tune from running twice in a
cluster (see :mod:`bot.services.store.jobs`). This module is the event-loop side of it:

* :func:`try_claim` takes the job, or says how long another process's live lease has left (a
  process that was killed holds one until it expires), or that the job ended elsewhere;
* :class:`LeaseKeeper` renews the lease every third of its length while the fine-tune runs, and
  calls ``on_lost`` (which cancels the job) if another process took the job over, or if the
  database stayed unreachable for longer than the lease, after which another process may have.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Callable

from bot.errors import StorageError
from bot.services.records import JobRecord
from bot.services.store.jobs import JobStore, Lease

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0  # how often a waiting job asks the database again


@dataclass(frozen=True)
class Busy:
    """Another process holds the job's lease; ask again in ``retry_in`` seconds."""

    holder: str | None
    retry_in: float


async def try_claim(jobs: JobStore, job_id: int, holder: str, ttl: float) -> Lease | Busy | JobRecord | None:
    """The lease on ``job_id``; :class:`Busy`; the job's record if it already ended; None if it is gone."""
    lease = await jobs.claim(job_id, holder, ttl)
    if lease is not None:
        return lease
    record = await jobs.get(job_id)
    if record is None or not record.state.active:
        return record
    remaining = (record.lease_expires_at or 0.0) - time.time()
    return Busy(record.holder, min(max(remaining, 0.05), RECHECK_SECONDS))


class LeaseKeeper:
    """``async with LeaseKeeper(...)``: renew ``lease`` in the background for the block's duration."""

    def __init__(self, jobs: JobStore, lease: Lease, ttl: float, on_lost: Callable[[str], object]) -> None:
        self._jobs = jobs
        self._lease = lease
        self._ttl = ttl
        self._on_lost = on_lost
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "LeaseKeeper":
        self._task = asyncio.create_task(self._renew_forever(), name=f"dinobot-lease-{self._lease.job_id}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _renew_forever(self) -> None:
        confirmed = time.monotonic()
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                kept = await self._jobs.renew(self._lease, self._ttl)
            except StorageError as exc:
                if time.monotonic() - confirmed > self._ttl:
                    self._lose("stopped: the database was unreachable for longer than the job's lease")
                    return
                log.warning("could not renew the lease of fine-tune #%d (%s); retrying", self._lease.job_id, exc)
                continue
            if not kept:
                self._lose("stopped: another process took this fine-tune over")
                return
            confirmed = time.monotonic()

    def _lose(self, reason: str) -> None:
        log.warning("guild %d: fine-tune #%d lost its lease: %s", self._lease.guild_id, self._lease.job_id, reason)
        self._on_lost(reason)
