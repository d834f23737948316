"""The handle a caller gets for a fine-tune: live state, updates to await, and the outcome.

A :class:`TrainingJob` lives on the event loop. The training thread never touches it directly:
progress reaches it through ``loop.call_soon_threadsafe``, so every state change, every
listener call and every wake-up of :meth:`TrainingJob.updates` happens on the loop thread,
and a cog can edit its message from there without locks.

Updates are "latest wins": a consumer slower than the training sees fewer snapshots, never a
backlog, but always the final one (editing a Discord message every epoch would hit rate
limits anyway).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import AsyncIterator, Callable

from bot.errors import DinoBotError
from bot.services.records import TextEnum, Trigger
from model import Progress

log = logging.getLogger(__name__)


class NotEnoughNames(DinoBotError):
    """A fine-tune was asked for a server with too few approved names to learn from."""

    def __init__(self, needed: int, have: int) -> None:
        self.needed = needed
        self.have = have
        super().__init__(f"Fine-tuning needs at least {needed} approved names; "
                         f"this server has {have}.")


class JobStatus(TextEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # finished and judged: see Outcome.promoted
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.FAILED)


@dataclass(frozen=True)
class Outcome:
    """What a finished job did. ``promoted`` False means the server's model did not change."""

    promoted: bool
    reason: str  # one sentence for the admin: why promoted, discarded, cancelled or failed
    names_used: int = 0  # server names in the fine-tune's data (training + held out)
    new_names: int = 0  # of those, names no earlier version had used
    val_loss_before: float | None = None  # current model on the validation set
    val_loss_after: float | None = None  # fine-tuned model on the same set
    version: int | None = None  # the version recorded (promoted or discarded), if any
    samples: tuple[str, ...] = ()  # a few names the new model invents
    seconds: float = 0.0
    error_id: str | None = None  # set when it failed on a bug: the id its traceback is logged under


@dataclass(frozen=True)
class JobSnapshot:
    """One consistent view of a job, safe to keep and to read from anywhere.

    ``progress`` is the training loop's own latest report, passed through unchanged (None until
    the first epoch ends), so the reply shows exactly what the model reported.
    """

    status: JobStatus
    progress: Progress | None = None
    outcome: Outcome | None = None

    @property
    def fraction(self) -> float:
        if self.status is JobStatus.DONE:
            return 1.0
        return self.progress.fraction if self.progress else 0.0

    @property
    def percent(self) -> int:
        return int(self.fraction * 100)

    @property
    def eta(self) -> float | None:
        """Seconds left, if every remaining epoch runs; 0 once done, None before the first epoch."""
        if self.status is JobStatus.DONE:
            return 0.0
        return self.progress.eta if self.progress and not self.status.finished else None

    def describe(self) -> str:
        """A one-line status for a chat reply, e.g. "running: 40 % done, about 3 s left"."""
        p = self.progress
        if self.status is JobStatus.RUNNING and p is not None:
            eta = f", about {self.eta:.0f} s left" if self.eta is not None else ""
            return (f"running: {self.percent} % done (model {p.member + 1}/{p.members}, "
                    f"epoch {p.epoch}/{p.epochs}){eta}")
        if self.outcome is not None:
            return f"{self.status}: {self.outcome.reason}"
        return str(self.status)


Listener = Callable[[JobSnapshot], None]

#: Epoch reports a job keeps for its chart (a real fine-tune reports a few dozen; a runaway one
#: stops being recorded, not being trained).
MAX_HISTORY = 10_000


class TrainingJob:
    """A queued or running fine-tune of one guild. Created by the TrainingService only."""

    def __init__(self, job_id: int, guild_id: int, requested_by: int | None,
                 trigger: Trigger) -> None:
        self.id = job_id
        self.guild_id = guild_id
        self.requested_by = requested_by
        self.trigger = trigger
        self.created_at = time.time()
        self.stop_flag = threading.Event()  # polled by the training thread between batches
        self.cancel_reason: str | None = None
        self._snapshot = JobSnapshot(JobStatus.QUEUED)
        self._seq = 0
        self._changed = asyncio.Event()
        self._listeners: list[Listener] = []
        self._history: list[Progress] = []

    def __repr__(self) -> str:
        return f"<TrainingJob #{self.id} guild={self.guild_id} {self._snapshot.describe()}>"

    # ------------------------------------------------------------------ reading

    @property
    def snapshot(self) -> JobSnapshot:
        return self._snapshot

    @property
    def status(self) -> JobStatus:
        return self._snapshot.status

    @property
    def done(self) -> bool:
        return self._snapshot.status.finished

    @property
    def outcome(self) -> Outcome | None:
        return self._snapshot.outcome

    @property
    def history(self) -> tuple[Progress, ...]:
        """Every epoch's report so far, in order (each network of an ensemble in turn): what
        the summary's chart draws. Snapshots carry only the latest."""
        return tuple(self._history)

    async def updates(self) -> AsyncIterator[JobSnapshot]:
        """The current snapshot, then each newer one, ending with the finished one."""
        seen = -1
        while True:
            if self._seq != seen:
                seen, snapshot = self._seq, self._snapshot
                yield snapshot
                if snapshot.status.finished:
                    return
                continue
            await self._changed.wait()

    async def wait(self) -> Outcome:
        """Wait for the job to finish and return its outcome."""
        async for snapshot in self.updates():
            if snapshot.outcome is not None:
                return snapshot.outcome
        raise AssertionError("a finished job always has an outcome")  # pragma: no cover

    def add_listener(self, callback: Listener) -> None:
        """Call ``callback(snapshot)`` on the event loop after every change."""
        self._listeners.append(callback)

    # ------------------------------------------------------------------ control

    def cancel(self, reason: str = "cancelled") -> bool:
        """Ask the job to stop; a queued job ends at once. False if it had already finished.

        A running job stops at the training thread's next batch (within milliseconds) and
        then finishes as cancelled; ``reason`` becomes its outcome's reason.
        """
        if self.done:
            return False
        self.cancel_reason = reason
        self.stop_flag.set()
        if self.status is JobStatus.QUEUED:
            self.finish(JobStatus.CANCELLED, Outcome(False, f"{reason} before it started"))
        return True

    # ------------------------------------------------------------------ updates (service only)

    def mark_running(self) -> None:
        self._publish(replace(self._snapshot, status=JobStatus.RUNNING))

    def on_progress(self, p: Progress) -> None:
        """Take one epoch's report from the training thread (via call_soon_threadsafe)."""
        if self.done:
            return
        if len(self._history) < MAX_HISTORY:
            self._history.append(p)
        self._publish(replace(self._snapshot, progress=p))

    def finish(self, status: JobStatus, outcome: Outcome) -> None:
        if self.done:
            return
        self._publish(replace(self._snapshot, status=status, outcome=outcome))

    def _publish(self, snapshot: JobSnapshot) -> None:
        self._snapshot = snapshot
        self._seq += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for callback in list(self._listeners):
            try:
                callback(snapshot)
            except Exception:  # a broken listener must not break training
                log.exception("listener of job #%d failed", self.id)
