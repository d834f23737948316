"""Fine-tuned model versions per guild: numbering, recording outcomes, and the served chain."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Iterable

import aiosqlite

from bot.errors import NotFound, StorageError
from bot.services.records import ModelVersion, Trigger, VersionStatus
from bot.services.store.db import Database, is_unique_violation, real

_NEXT_VERSION_SQL = "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE guild_id = ?"


class VersionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def next_number(self, guild_id: int) -> int:
        """The number :meth:`record` will give this guild's next version.

        Lets the training service name the checkpoint file before the row exists (the file is
        written first, then the row committed). One training at a time, so nobody races it;
        if someone did, the UNIQUE(guild_id, version) constraint would refuse the second.
        """
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
    ) -> int:
        """Record a fine-tune's outcome and return its version number.

        ``version`` defaults to :meth:`next_number`. ``parent_version`` None means the base
        model. ``duration_s`` defaults to ``finished_at - started_at``. For a promoted version,
        ``trained_names`` are marked as first trained by it in the same transaction, so the
        "new names" count can never disagree with the served model. Losses that are NaN are
        stored as NULL (SQLite has no NaN); say why in ``reason``.
        """
        trig, stat = Trigger(trigger), VersionStatus(status)
        names = list(trained_names)
        if names and stat is not VersionStatus.PROMOTED:
            raise ValueError("only a promoted version can be marked as having trained on names")
        duration = finished_at - started_at if duration_s is None else duration_s
        async with self._db.transaction() as db:
            if version is None:
                rows = await db.execute_fetchall(_NEXT_VERSION_SQL, (guild_id,))
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
                await db.execute(
                    "INSERT INTO model_versions (guild_id, version, checkpoint_path,"
                    " parent_version, names_used, train_loss_before, train_loss_after,"
                    " val_loss_before, val_loss_after, trigger, requested_by, started_at,"
                    " finished_at, duration_s, status, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
            except sqlite3.IntegrityError as exc:
                raise _version_error(exc, version, parent_version) from None
            if names:
                await _mark_trained(db, guild_id, names, version)
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


async def _mark_trained(db: aiosqlite.Connection, guild_id: int, names: list[str], version: int) -> None:
    await db.executemany(
        "UPDATE submissions SET first_trained_version = ?"
        " WHERE guild_id = ? AND name = ? AND first_trained_version IS NULL",
        [(version, guild_id, name) for name in names],
    )


def _version_error(exc: sqlite3.IntegrityError, version: int, parent: int | None) -> Exception:
    if is_unique_violation(exc):
        return StorageError(f"model version {version} is already recorded for this server")
    if "FOREIGN KEY" in str(exc):
        return NotFound(f"parent model version {parent}")
    return exc


def _model_version(row: sqlite3.Row) -> ModelVersion:
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
