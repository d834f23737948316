"""Fine-tune jobs as rows, so "at most one fine-tune per server" holds for a whole cluster.

A request is a ``queued`` row; the partial unique index ``training_jobs_one_active`` allows one
queued-or-running row per guild, so a second request returns the first. A process runs a job
only after *claiming* it: one ``UPDATE ... WHERE`` that succeeds for one process only, and gives
it a lease (``holder``, ``lease_expires_at``) that it renews while training. The lease is the
guard, not memory: a process that is killed stops renewing, and once the lease has expired the
job may be claimed again (by the restarted process, or whichever process has the server's shard
then). The promotion itself checks the lease inside its own transaction
(:func:`finish_job` from ``VersionStore.record``), so a process that lost its lease can never
promote. Rows are never deleted: finished jobs are the history of who trained what.

A job whose process died mid-run ``MAX_ATTEMPTS`` times is marked failed instead of claimed a
next time, so a fine-tune that crashes the process cannot crash it for ever.
"""
from __future__ import annotations

from dataclasses import dataclass

from bot.errors import StorageError
from bot.services.records import JobRecord, JobState, Trigger
from bot.services.store.db import Database, Row, Tx, UniqueViolation, lock_key

MAX_ATTEMPTS = 3
_COLUMNS = ("id, guild_id, trigger, requested_by, requested_at, state, holder, lease_expires_at, attempts,"
            " finished_at, reason, version")
_ACTIVE = "state IN ('queued', 'running')"


class LeaseLost(StorageError):
    """This process no longer holds the job's lease (it expired and another process may run it)."""


@dataclass(frozen=True)
class Lease:
    """Proof that ``holder`` claimed job ``job_id``; needed to renew, release or finish it."""

    job_id: int
    guild_id: int
    holder: str


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(self, guild_id: int, trigger: Trigger | str, requested_by: int | None) -> tuple[JobRecord, bool]:
        """Queue a fine-tune of the guild: (the job, True), or (the one already active, False)."""
        trig = Trigger(trigger)
        try:
            async with self._db.transaction(lock_key("guild", guild_id)) as tx:
                existing = await tx.fetch(f"SELECT {_COLUMNS} FROM training_jobs WHERE guild_id = ? AND {_ACTIVE}",
                                          (guild_id,))
                if existing:
                    return _job(existing[0]), False
                rows = await tx.fetch(
                    "INSERT INTO training_jobs (guild_id, trigger, requested_by, requested_at, state)"
                    f" VALUES (?, ?, ?, ?, 'queued') RETURNING {_COLUMNS}",
                    (guild_id, trig.value, requested_by, self._db.now()))
        except UniqueViolation:  # only without the lock's protection (SQLite: never; kept for safety)
            (row,) = await self._db.fetch(f"SELECT {_COLUMNS} FROM training_jobs WHERE guild_id = ? AND {_ACTIVE}",
                                          (guild_id,))
            return _job(row), False
        return _job(rows[0]), True

    async def get(self, job_id: int) -> JobRecord | None:
        rows = await self._db.fetch(f"SELECT {_COLUMNS} FROM training_jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    async def active(self) -> list[JobRecord]:
        """Every queued or running job of every guild, oldest first (what a restart picks up)."""
        rows = await self._db.fetch(f"SELECT {_COLUMNS} FROM training_jobs WHERE {_ACTIVE} ORDER BY id")
        return [_job(r) for r in rows]

    async def history(self, guild_id: int) -> list[JobRecord]:
        """A guild's jobs, oldest first."""
        rows = await self._db.fetch(f"SELECT {_COLUMNS} FROM training_jobs WHERE guild_id = ? ORDER BY id",
                                    (guild_id,))
        return [_job(r) for r in rows]

    async def claim(self, job_id: int, holder: str, ttl: float) -> Lease | None:
        """Take the job for ``ttl`` seconds: queued, or running under a lease that has expired.

        None if someone else holds a live lease or the job is no longer active. One statement,
        so two processes claiming at once cannot both succeed (the second re-checks the row
        the first updated). A job already claimed ``MAX_ATTEMPTS`` times is failed instead.
        """
        now = self._db.now()
        params = {"id": job_id, "holder": holder, "now": now, "until": now + ttl, "max": MAX_ATTEMPTS}
        rows = await self._db.write_one(
            "UPDATE training_jobs SET state = 'running', holder = :holder, lease_expires_at = :until,"
            " attempts = attempts + 1"
            " WHERE id = :id AND attempts < :max AND (state = 'queued' OR (state = 'running'"
            " AND (holder = :holder OR lease_expires_at < :now))) RETURNING guild_id", params)
        if rows:
            return Lease(job_id, int(rows[0]["guild_id"]), holder)
        await self._db.write_one(
            "UPDATE training_jobs SET state = 'failed', finished_at = :now, holder = NULL, lease_expires_at = NULL,"
            " reason = 'failed: the process running it stopped ' || attempts || ' times'"
            " WHERE id = :id AND attempts >= :max AND (state = 'queued' OR (state = 'running'"
            " AND lease_expires_at < :now))", {"id": job_id, "now": now, "max": MAX_ATTEMPTS})
        return None

    async def renew(self, lease: Lease, ttl: float) -> bool:
        """Extend the lease; False if it was lost (expired and claimed elsewhere, or finished)."""
        rows = await self._db.write_one(
            "UPDATE training_jobs SET lease_expires_at = ? WHERE id = ? AND holder = ? AND state = 'running'"
            " RETURNING id", (self._db.now() + ttl, lease.job_id, lease.holder))
        return bool(rows)

    async def finish(self, job_id: int, state: JobState | str, reason: str, *, lease: Lease | None = None) -> bool:
        """End a job as cancelled or failed: a running one with its lease, a queued one without."""
        end = JobState(state)
        async with self._db.transaction() as tx:
            if lease is not None:
                return await finish_job(tx, lease, end, reason, self._db.now())
            rows = await tx.fetch(
                "UPDATE training_jobs SET state = ?, finished_at = ?, reason = ?"
                " WHERE id = ? AND state = 'queued' RETURNING id", (end.value, self._db.now(), reason, job_id))
            return bool(rows)


async def finish_job(tx: Tx, lease: Lease, state: JobState, reason: str, now: float,
                     version: int | None = None) -> bool:
    """End a running job inside the caller's transaction, only if ``lease`` still holds it."""
    if state.active:
        raise ValueError(f"a job cannot finish as {state}")
    rows = await tx.fetch(
        "UPDATE training_jobs SET state = ?, finished_at = ?, reason = ?, version = ?, lease_expires_at = NULL"
        " WHERE id = ? AND holder = ? AND state = 'running' RETURNING id",
        (state.value, now, reason, version, lease.job_id, lease.holder))
    return bool(rows)


def _job(row: Row) -> JobRecord:
    return JobRecord(row["id"], row["guild_id"], Trigger(row["trigger"]), row["requested_by"], row["requested_at"],
                     JobState(row["state"]), row["holder"], row["lease_expires_at"], row["attempts"],
                     row["finished_at"], row["reason"], row["version"])
