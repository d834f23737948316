"""Fine-tuned model versions per guild: numbering, recording outcomes, checkpoints, the served chain.

A promoted version's checkpoint (the ``.npz`` bytes) is stored in ``model_checkpoints`` in the
same transaction as its row, so any process of a cluster can load it and a crash can never
leave a row without its model or a model without its row.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from bot.errors import NotFound, StorageError
from bot.services.records import JobState, ModelVersion, Trigger, VersionStatus
from bot.services.store.db import (
    Database,
    ForeignKeyViolation,
    IntegrityViolation,
    Row,
    Tx,
    UniqueViolation,
    lock_key,
    real,
)
from bot.services.store.jobs import Lease, LeaseLost, finish_job

_NEXT_VERSION_SQL = "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE guild_id = ?"


class VersionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def next_number(self, guild_id: int) -> int:
        """The number :meth:`record` will give this guild's next version (if nobody records first)."""
        rows = await self._db.fetch(_NEXT_VERSION_SQL, (guild_id,))
        return int(rows[0][0])

    async def record(
        self,
        guild_id: int,
        *,
        trigger: Trigger | str,
        status: VersionStatus | str,
        started_at: float,
        finished_at: float,
        checkpoint_path: str | Path | None = None,
        parent_version: int | None = None,
        names_used: int = 0,
        train_loss_before: float | None = None,
        train_loss_after: float | None = None,
        val_loss_before: float | None = None,
        val_loss_after: float | None = None,
        requested_by: int | None = None,
        duration_s: float | None = None,
        reason: str = "",
        version: int | None = None,
        trained_names: Iterable[str] = (),
        checkpoint: bytes | None = None,
        lease: Lease | None = None,
    ) -> int:
        """Record a fine-tune's outcome and return its version number.

        ``version`` defaults to :meth:`next_number`. ``parent_version`` None means the base
        model. ``duration_s`` defaults to ``finished_at - started_at``. For a promoted version,
        ``checkpoint`` (the model's bytes) is stored with the row and ``trained_names`` are
        marked as first trained by it, all in one transaction, so the "new names" count can
        never disagree with the served model. With ``lease``, the job that made it is finished
        in that same transaction, and :class:`LeaseLost` (nothing recorded) if this process no
        longer holds it. Losses that are NaN are stored as NULL; say why in ``reason``.
        """
        trig, stat = Trigger(trigger), VersionStatus(status)
        names = list(trained_names)
        if (names or checkpoint is not None) and stat is not VersionStatus.PROMOTED:
            raise ValueError("only a promoted version has a checkpoint or names it trained on")
        if checkpoint is not None and not checkpoint:
            raise ValueError("a checkpoint cannot be empty")
        duration = finished_at - started_at if duration_s is None else duration_s
        async with self._db.transaction(lock_key("guild", guild_id)) as tx:
            if version is None:
                rows = await tx.fetch(_NEXT_VERSION_SQL, (guild_id,))
                version = int(rows[0][0])
            if parent_version is not None and parent_version >= version:
                raise NotFound(f"parent model version {parent_version}")
            values = (
                guild_id, version, None if checkpoint_path is None else str(checkpoint_path),
                parent_version, names_used, real(train_loss_before), real(train_loss_after),
                real(val_loss_before), real(val_loss_after), trig.value, requested_by,
                started_at, finished_at, duration, stat.value, reason,
            )
            try:
                await tx.execute(
                    "INSERT INTO model_versions (guild_id, version, checkpoint_path,"
                    " parent_version, names_used, train_loss_before, train_loss_after,"
                    " val_loss_before, val_loss_after, trigger, requested_by, started_at,"
                    " finished_at, duration_s, status, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            except IntegrityViolation as exc:
                raise _version_error(exc, version, parent_version) from None
            if checkpoint is not None:
                await _store_checkpoint(tx, guild_id, version, checkpoint)
            if names:
                await _mark_trained(tx, guild_id, names, version)
            if lease is not None and not await finish_job(tx, lease, JobState.DONE, reason, self._db.now(), version):
                raise LeaseLost(f"fine-tune job {lease.job_id} of guild {guild_id} is no longer held by this "
                                "process (its lease expired); nothing was recorded")
        return version

    async def list(self, guild_id: int, status: VersionStatus | str | None = None) -> list[ModelVersion]:
        """A guild's fine-tunes, oldest first, optionally only promoted or discarded ones.

        ``list(g, "promoted")`` read backwards is the fallback chain when the newest
        checkpoint turns out to be missing or corrupt.
        """
        if status is None:
            rows = await self._db.fetch(
                "SELECT * FROM model_versions WHERE guild_id = ? ORDER BY version", (guild_id,))
        else:
            rows = await self._db.fetch(
                "SELECT * FROM model_versions WHERE guild_id = ? AND status = ? ORDER BY version",
                (guild_id, VersionStatus(status).value))
        return [_model_version(r) for r in rows]

    async def checkpoint(self, guild_id: int, version: int) -> tuple[bytes, str] | None:
        """A version's checkpoint bytes and their recorded SHA-256, or None if it has none stored."""
        rows = await self._db.fetch(
            "SELECT data, sha256 FROM model_checkpoints WHERE guild_id = ? AND version = ?", (guild_id, version))
        return (bytes(rows[0]["data"]), rows[0]["sha256"]) if rows else None

    async def attach_checkpoint(self, guild_id: int, version: int, data: bytes) -> bool:
        """Store the bytes of a version recorded before checkpoints lived in the database.

        False if it already has some (they are never replaced).
        """
        async with self._db.transaction(lock_key("guild", guild_id)) as tx:
            if await tx.fetch("SELECT 1 FROM model_checkpoints WHERE guild_id = ? AND version = ?",
                              (guild_id, version)):
                return False
            await _store_checkpoint(tx, guild_id, version, data)
        return True

    async def without_checkpoint(self) -> list[ModelVersion]:
        """Promoted versions whose checkpoint is only a file path (recorded by an older DinoBot)."""
        rows = await self._db.fetch(
            "SELECT * FROM model_versions AS v WHERE status = 'promoted' AND checkpoint_path IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM model_checkpoints AS c"
            " WHERE c.guild_id = v.guild_id AND c.version = v.version) ORDER BY guild_id, version")
        return [_model_version(r) for r in rows]


def checkpoint_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _store_checkpoint(tx: Tx, guild_id: int, version: int, data: bytes) -> None:
    await tx.execute("INSERT INTO model_checkpoints (guild_id, version, data, sha256) VALUES (?, ?, ?, ?)",
                     (guild_id, version, data, checkpoint_digest(data)))


async def _mark_trained(tx: Tx, guild_id: int, names: list[str], version: int) -> None:
    await tx.executemany(
        "UPDATE submissions SET first_trained_version = ?"
        " WHERE guild_id = ? AND name = ? AND first_trained_version IS NULL",
        [(version, guild_id, name) for name in names],
    )


def _version_error(exc: IntegrityViolation, version: int, parent: int | None) -> Exception:
    if isinstance(exc, UniqueViolation):
        return StorageError(f"model version {version} is already recorded for this server")
    if isinstance(exc, ForeignKeyViolation):
        return NotFound(f"parent model version {parent}")
    return exc


def _model_version(row: Row) -> ModelVersion:
    return ModelVersion(
        guild_id=row["guild_id"], version=row["version"],
        checkpoint_path=row["checkpoint_path"], parent_version=row["parent_version"],
        names_used=row["names_used"], train_loss_before=row["train_loss_before"],
        train_loss_after=row["train_loss_after"], val_loss_before=row["val_loss_before"],
        val_loss_after=row["val_loss_after"], trigger=Trigger(row["trigger"]),
        requested_by=row["requested_by"], started_at=row["started_at"],
        finished_at=row["finished_at"], duration_s=row["duration_s"],
        status=VersionStatus(row["status"]), reason=row["reason"],
    )
