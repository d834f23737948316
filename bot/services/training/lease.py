"""Holding a fine-tune job's database lease: claim it (waiting if need be), keep it, notice losing it.

The lease, not this process's memory, is what keeps a fine-tune from running twice in a
cluster (see :mod:`bot.services.store.jobs`). This module is the event-loop side of it:

* :func:`claim` takes the job, waiting while another process holds a live lease (a process
  that was killed holds one until it expires), and says so when the job ended elsewhere;
* :class:`LeaseKeeper` renews the lease every third of its length while the fine-tune runs, and
  calls ``on_lost`` (which cancels the job) if another process took the job over, or if the
  database stayed unreachable for longer than the lease, after which another process may have.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Callable

from bot.errors import StorageError
from bot.services.records import JobRecord
from bot.services.store.jobs import JobStore, Lease

log = logging.getLogger(__name__)

MAX_WAIT_SLICE = 0.25  # seconds between looks at the cancel flag while waiting for a lease
RECHECK_SECONDS = 1.0  # how often a waiting process asks the database whether the job ended


async def claim(jobs: JobStore, job_id: int, holder: str, ttl: float,
                stopped: Callable[[], bool]) -> Lease | JobRecord | None:
    """The lease on ``job_id``; or its record if it already ended; None if ``stopped()`` first."""
    waiting_logged = False
    while True:
        lease = await jobs.claim(job_id, holder, ttl)
        if lease is not None:
            return lease
        record = await jobs.get(job_id)
        if record is None or not record.state.active:
            return record
        if not waiting_logged:
            log.info("guild %d: fine-tune #%d is held by %s until its lease expires; waiting",
                     record.guild_id, job_id, record.holder)
            waiting_logged = True
        remaining = (record.lease_expires_at or 0.0) - time.time()
        deadline = time.monotonic() + min(max(remaining, 0.05), RECHECK_SECONDS)
        while time.monotonic() < deadline:
            if stopped():
                return None
            await asyncio.sleep(min(MAX_WAIT_SLICE, max(0.0, deadline - time.monotonic())))


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
