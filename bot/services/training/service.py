"""Fine-tuning servers' models in the background without ever blocking the bot.

One asyncio worker task takes jobs from a FIFO queue, one at a time. For each it gathers the
data on the event loop (database reads), runs the fine-tune in the service's own single
thread (``ThreadPoolExecutor(max_workers=1)``), and judges and promotes the result back on the
loop. Progress crosses from the thread with ``loop.call_soon_threadsafe``.

Jobs are rows in the database (:mod:`bot.services.store.jobs`): a request queues one, and the
worker runs it only once it holds the row's lease, which it keeps renewing
(:mod:`bot.services.training.lease`). So a fine-tune runs at most once in a whole cluster, and
a job whose process was killed runs again, after its lease expires, when its server's process
is back (:meth:`TrainingService.resume` at start-up and on every scheduler tick). A clean
shutdown cancels the jobs, as an admin's Cancel would.

Promotion is one transaction: the version row, the checkpoint's bytes, the names it trained on
and the job's completion, the latter only if this process still holds the lease. Then the model
is swapped in memory. A crash before the commit leaves nothing behind (no file, no row); after
it, a restart serves what the database says. The checkpoint is serialised in the training
thread, so the loop never spends time on it.

The row marks every name of the fine-tune's data as trained by that version, held-out ones
included: they were used (to validate), and otherwise they would stay "new" for ever and keep
triggering the scheduler. A discarded version marks nothing, so its names stay new.

The periodic scheduler (:mod:`bot.services.training.scheduler`) asks for fine-tunes of servers
with enough untrained names, among the servers this process owns (its shards').
"""
from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Sequence

from bot.errors import DinoBotError, StorageError
from bot.services.registry import ModelRegistry, ServedModel
from bot.services.store import JobRecord, JobState, Lease, Status, Store, Trigger, VersionStatus
from bot.services.training import lease as leases
from bot.services.training.courtesy import Courtesy
from bot.services.training.fine_tune import (
    TrainingPlan,
    TrainingRun,
    base_validation_names,
    gil_switch_interval,
    judge,
    run_fine_tune,
)
from bot.services.training.jobs import JobStatus, NotEnoughNames, Outcome, TrainingJob
from bot.services.training.scheduler import Scheduler
from bot.services.training.settings import TrainingSettings
from model import Progress, checkpoint_bytes, split_holdout

log = logging.getLogger(__name__)

SHUTDOWN_REASON = "cancelled: the bot is shutting down"


class TrainingService:
    """Queues, runs, judges and promotes fine-tunes. ``await start()``, then ``request``."""

    def __init__(self, store: Store, registry: ModelRegistry,
                 settings: TrainingSettings | None = None, *,
                 replay_names: Sequence[str] | None = None,
                 base_val_names: Sequence[str] | None = None,
                 clock: Callable[[], float] = time.time,
                 activity: Callable[[], float] | None = None,
                 owns: Callable[[int], bool] = lambda guild_id: True,
                 holder: str | None = None) -> None:
        """``replay_names``: a base corpus to replay; None replays the shipped model's samples.
        ``base_val_names``: real names that measure what a fine-tune forgets (the base model's
        validation file), kept out of replay; None measures it on the base model's samples.

        ``activity``: when the bot last saw an interaction (``time.monotonic()``); training
        pauses between batches while the bot is busy (see :mod:`bot.cpu_priority`).
        ``owns(guild_id)``: whether this process serves the guild (its shard is one of ours);
        only those are scheduled and resumed. ``holder`` names this process in job leases.
        """
        self.store = store
        self.registry = registry
        self.settings = settings or TrainingSettings()
        self.owns = owns
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        # The names forgetting is measured on; with none given, base-model samples (drawn once).
        self._base_val = tuple(dict.fromkeys(base_val_names)) if base_val_names else None
        judged = set(self._base_val or ())
        replay = tuple(n for n in replay_names or () if n not in judged)
        self._replay = replay or None
        self._clock = clock
        self._activity = activity
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dinobot-train")
        self._queue: asyncio.Queue[TrainingJob | None] = asyncio.Queue()
        self._jobs: dict[int, TrainingJob] = {}  # guild -> its queued or running job
        self._waiting: set[int] = set()  # jobs whose lease another process holds (logged once)
        self._worker: asyncio.Task | None = None
        self.scheduler = Scheduler(self)
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the worker, pick up this process's unfinished jobs, and start the scheduler
        unless ``schedule_minutes`` is 0 (idempotent)."""
        if self._worker is not None:
            return
        self._worker = asyncio.create_task(self._work(), name="dinobot-training-worker")
        await self.resume()
        self.scheduler.start()

    async def close(self) -> None:
        """Stop the scheduler, cancel queued and running jobs, wait, shut the thread down.

        A running fine-tune stops at its next batch; one already past training finishes its
        promotion, so nothing is left half-done. Close this before the store.
        """
        if self._closed:
            return
        self._closed = True
        await self.scheduler.stop()
        queued = [job for job in self._jobs.values() if job.status is JobStatus.QUEUED]
        for job in list(self._jobs.values()):
            job.cancel(SHUTDOWN_REASON)
        for job in queued:  # the running one is settled by the worker
            await self._settle(job, None, JobStatus.CANCELLED, SHUTDOWN_REASON)
        self._queue.put_nowait(None)  # wakes the worker, which then exits
        if self._worker is not None:
            await self._worker
        await asyncio.to_thread(self._executor.shutdown, True)
        log.info("training service closed")

    async def __aenter__(self) -> "TrainingService":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ requests

    def now(self) -> float:
        """The service's clock (unix seconds; tests move it)."""
        return self._clock()

    def job(self, guild_id: int) -> TrainingJob | None:
        """The guild's queued or running job, if any."""
        job = self._jobs.get(guild_id)
        return job if job is not None and not job.done else None

    def queued_guilds(self) -> list[int]:
        """Guilds with a job, in the order they will run (the running one first)."""
        return [g for g, job in self._jobs.items() if not job.done]

    async def request(self, guild_id: int, requested_by: int | None,
                      trigger: Trigger | str = Trigger.ADMIN) -> TrainingJob:
        """Queue a fine-tune of this guild, or return the one already queued or running.

        Raises :class:`NotEnoughNames` if the guild has fewer than ``min_names`` approved
        names. An admin's request (``requested_by`` set) is written to the audit log.
        """
        if self._closed or self._worker is None:
            raise DinoBotError("Training is not available right now (the bot is not running "
                               "its training service).")
        if (existing := self.job(guild_id)) is not None:
            return existing
        have = await self.store.names.count(guild_id, Status.APPROVED)
        if have < self.settings.min_names:
            raise NotEnoughNames(self.settings.min_names, have)
        if requested_by is not None:
            await self.store.audit.log(guild_id, requested_by, "finetune.request",
                                        {"trigger": str(Trigger(trigger))})
        record, _ = await self.store.jobs.enqueue(guild_id, trigger, requested_by)
        if (existing := self.job(guild_id)) is not None:  # another request won the race
            return existing
        job = self._track(record)
        log.info("guild %d: fine-tune #%d queued (%s, by %s)", guild_id, job.id, trigger, requested_by)
        return job

    async def resume(self) -> list[TrainingJob]:
        """Queue the database's unfinished jobs for this process's guilds that it is not tracking.

        After a crash (or a shard moving here) these are the jobs nobody is running; each
        waits for its old lease to expire before it runs.
        """
        resumed = []
        for record in await self.store.jobs.active():
            if self.owns(record.guild_id) and self.job(record.guild_id) is None and not self._closed:
                resumed.append(self._track(record))
                log.info("guild %d: resuming fine-tune #%d (%s, attempt %d)", record.guild_id, record.id,
                         record.state, record.attempts + 1)
        return resumed

    def _track(self, record: JobRecord) -> TrainingJob:
        job = TrainingJob(record.id, record.guild_id, record.requested_by, record.trigger)
        self._jobs[record.guild_id] = job
        self._queue.put_nowait(job)
        return job

    async def cancel(self, guild_id: int, requested_by: int | None = None) -> bool:
        """Cancel the guild's queued or running fine-tune; False if there was none."""
        job = self.job(guild_id)
        reason = "cancelled by an admin" if requested_by is not None else "cancelled"
        was_queued = job is not None and job.status is JobStatus.QUEUED
        if job is None or not job.cancel(reason):
            return False
        if was_queued:  # a running job is settled by the worker, with its lease
            await self._settle(job, None, JobStatus.CANCELLED, reason)
        if requested_by is not None:
            await self.store.audit.log(guild_id, requested_by, "finetune.cancel",
                                        {"job": job.id})
        return True

    # ------------------------------------------------------------------ the worker

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            if job is None:
                return
            if job.done:  # cancelled while queued
                self._forget(job)
                continue
            waiting = False
            try:
                waiting = await self._run(job)
            except DinoBotError as exc:  # deliberate (the database gone, say): its text is for people
                job.finish(JobStatus.FAILED, Outcome(False, str(exc)))
            except Exception as exc:  # people get plain words or an id to quote; the traceback goes to the log
                error_id = secrets.token_hex(4)
                log.exception("guild %d: fine-tune #%d failed (error id %s)", job.guild_id, job.id, error_id)
                job.finish(JobStatus.FAILED, failure_outcome(exc, error_id))
            finally:
                if not waiting:
                    self.scheduler.record(job)
                    self._forget(job)

    def _forget(self, job: TrainingJob) -> None:
        if self._jobs.get(job.guild_id) is job:
            del self._jobs[job.guild_id]
        self._waiting.discard(job.id)

    async def _run(self, job: TrainingJob) -> bool:
        """Claim the job's lease, keep it while the attempt runs, and record how it ended.

        True if another process holds the lease: the job goes back to the queue after a short
        wait instead of holding up the other servers' jobs behind it.
        """
        ttl = self.settings.lease_seconds
        claimed = await leases.try_claim(self.store.jobs, job.id, self.holder, ttl)
        if isinstance(claimed, leases.Busy):
            if job.id not in self._waiting:
                self._waiting.add(job.id)
                log.info("guild %d: fine-tune #%d is held by %s until its lease expires; waiting",
                         job.guild_id, job.id, claimed.holder)
            asyncio.get_running_loop().call_later(claimed.retry_in, self._requeue, job)
            return True
        if not isinstance(claimed, Lease):
            job.finish(*_ended_elsewhere(claimed))
            return False
        job.mark_running()
        async with leases.LeaseKeeper(self.store.jobs, claimed, ttl, job.cancel):
            status, outcome = await self._attempt(job, claimed)
        if status is not JobStatus.DONE:  # DONE recorded the job with its version
            await self._settle(job, claimed, status, outcome.reason)
        job.finish(status, outcome)
        return False

    def _requeue(self, job: TrainingJob) -> None:
        if self._closed or job.done:
            self._forget(job)
        else:
            self._queue.put_nowait(job)

    async def _attempt(self, job: TrainingJob, lease: Lease) -> tuple[JobStatus, Outcome]:
        started = self._clock()
        try:
            plan = await self._plan(job.guild_id)
            loop = asyncio.get_running_loop()
            if job.stop_flag.is_set():  # cancelled while the data was gathered
                return JobStatus.CANCELLED, Outcome(False, job.cancel_reason or "cancelled")

            def progress(p: Progress) -> None:  # runs in the training thread
                loop.call_soon_threadsafe(job.on_progress, p)

            run = await loop.run_in_executor(self._executor, self._train_in_thread, plan,
                                             progress, self._stop_check(job))
            if run.fit.cancelled or job.stop_flag.is_set():
                log.info("guild %d: fine-tune #%d cancelled", job.guild_id, job.id)
                return JobStatus.CANCELLED, Outcome(False, job.cancel_reason or "cancelled",
                                                    seconds=self._clock() - started)
            return JobStatus.DONE, await self._conclude(job, plan, run, started, lease)
        except DinoBotError as exc:  # not enough names, the database gone, the lease lost
            return JobStatus.FAILED, Outcome(False, str(exc))
        except Exception:  # a bug: people get an id to quote, the traceback goes to the log
            return JobStatus.FAILED, _unexpected(job)

    async def _settle(self, job: TrainingJob, lease: Lease | None, status: JobStatus, reason: str) -> None:
        """Record a job that ended without a version: cancelled or failed (a queued one: no lease)."""
        try:
            await self.store.jobs.finish(job.id, JobState(status.value), reason, lease=lease)
        except StorageError as exc:
            log.warning("guild %d: could not record that fine-tune #%d %s (%s); it may run again once "
                        "its lease expires", job.guild_id, job.id, status, exc)

    async def _plan(self, guild_id: int) -> TrainingPlan:
        """What to train on: a bounded sample of the guild's approved names (see settings)."""
        s = self.settings
        have = await self.store.names.count(guild_id, Status.APPROVED)
        if have < s.min_names:
            raise NotEnoughNames(s.min_names, have)
        cap = max(s.max_names, s.min_names)
        sample = await self.store.names.training_sample(guild_id, cap, round(s.recent_share * cap))
        current = await self.registry.get(guild_id)
        train, held = split_holdout(sample.names, s.holdout_fraction, s.min_holdout)
        strength = (await self.store.settings.get(guild_id)).strength
        log.info("guild %d: fine-tuning on %d of its %d approved names (%d new)", guild_id,
                 len(sample.names), have, sample.new)
        return TrainingPlan(guild_id, current, self.registry.base.model, tuple(train), tuple(held),
                            await self._base_samples(), self._replay, sample.new, strength,
                            replay_seed=s.base_val_seed + 1)

    async def _base_samples(self) -> tuple[str, ...]:
        if self._base_val is None:
            loop = asyncio.get_running_loop()
            self._base_val = await loop.run_in_executor(
                self._executor, base_validation_names, self.registry.base.model,
                self.settings.base_val_samples, self.settings.base_val_seed)
        return self._base_val

    def _stop_check(self, job: TrainingJob) -> Callable[[], bool]:
        """The training thread's between-batches hook: give way to interactions, then say
        whether to stop."""
        if self._activity is None:
            return job.stop_flag.is_set
        courtesy = Courtesy(self._activity)

        def should_stop() -> bool:
            courtesy()
            return job.stop_flag.is_set()
        return should_stop

    def _train_in_thread(self, plan: TrainingPlan, progress: Callable[[Progress], None],
                         should_stop: Callable[[], bool]) -> TrainingRun:
        with gil_switch_interval(self.settings.switch_interval):
            return self._train(plan, progress, should_stop)

    def _train(self, plan: TrainingPlan, progress: Callable[[Progress], None],
               should_stop: Callable[[], bool]) -> TrainingRun:
        """The blocking fine-tune (training thread). Tests override it to fake a NaN result."""
        s = self.settings
        return run_fine_tune(plan, s.train_config, s.replay_ratio, s.outcome_samples, progress, should_stop,
                             time_budget=s.time_budget, tolerance=s.tolerance)

    # ------------------------------------------------------------------ judging and promoting

    async def _conclude(self, job: TrainingJob, plan: TrainingPlan, run: TrainingRun,
                        started: float, lease: Lease) -> Outcome:
        """Judge the run, then record it as discarded, or promote it (one transaction, then swap)."""
        verdict = judge(run, plan.strength, self.settings.tolerance)
        promote, reason = verdict.promote, verdict.reason
        record = dict(
            trigger=job.trigger, started_at=started, parent_version=plan.current.version,
            names_used=len(plan.all_names), train_loss_before=run.train_before,
            train_loss_after=run.train_after, val_loss_before=run.val_before,
            val_loss_after=run.fit.val_loss, requested_by=job.requested_by, reason=reason, lease=lease,
        )
        outcome = Outcome(promote, reason, len(plan.all_names), plan.new_names, run.val_before,
                          run.fit.val_loss, None, run.samples if promote else ())
        if not promote:
            version = await self.store.versions.record(
                job.guild_id, status=VersionStatus.DISCARDED, finished_at=self._clock(), **record)
            log.info("guild %d: version %d %s", job.guild_id, version, reason)
            return _with(outcome, version, self._clock() - started)
        version = await self.store.versions.next_number(job.guild_id)
        serialise = functools.partial(checkpoint_bytes, run.fit.model, guild_id=job.guild_id, version=version,
                                      parent_version=plan.current.version)
        data = await asyncio.get_running_loop().run_in_executor(self._executor, serialise)
        finished = self._clock()
        await self.store.versions.record(job.guild_id, status=VersionStatus.PROMOTED, finished_at=finished,
                                         checkpoint=data, version=version, trained_names=plan.all_names, **record)
        self.registry.swap_in(job.guild_id, ServedModel(
            run.fit.model, version, run.fit.val_loss, finished, len(plan.all_names),
            self.registry.source_of(job.guild_id, version)))
        log.info("guild %d: version %d %s", job.guild_id, version, reason)
        return _with(outcome, version, self._clock() - started)


def _unexpected(job: TrainingJob) -> Outcome:
    """Log the exception being handled under a fresh error id; the outcome quotes only the id."""
    error_id = secrets.token_hex(4)
    log.exception("guild %d: fine-tune #%d failed (error id %s)", job.guild_id, job.id, error_id)
    return Outcome(False, "failed because of an unexpected error", error_id=error_id)


def _ended_elsewhere(record: JobRecord | None) -> tuple[JobStatus, Outcome]:
    """How a job another process finished (or gave up on) ended, as this process reports it."""
    if record is None:
        return JobStatus.FAILED, Outcome(False, "failed: the job is no longer in the database")
    status = {JobState.DONE: JobStatus.DONE, JobState.CANCELLED: JobStatus.CANCELLED}.get(
        record.state, JobStatus.FAILED)
    promoted = record.state is JobState.DONE and record.reason.startswith("promoted")
    return status, Outcome(promoted, record.reason or str(record.state), version=record.version)


def failure_outcome(error: Exception, error_id: str) -> Outcome:
    """How a fine-tune that raised ends for the admin. Trouble with the machine is said in plain
    words (the operator can act on it); anything else is a bug, shown only as an id to quote.
    Never the raw exception text, which can hold paths and internals."""
    if isinstance(error, MemoryError):
        return Outcome(False, "failed because the bot ran out of memory")
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return Outcome(False, "failed because the disk is full, so the new model could not be saved")
    return Outcome(False, "failed because of an unexpected error", error_id=error_id)


def _with(outcome: Outcome, version: int, seconds: float) -> Outcome:
    return replace(outcome, version=version, seconds=seconds)
