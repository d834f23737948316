"""Copying a whole DinoBot database to another one (SQLite → PostgreSQL, or back), checked.

Rows keep their ids, so everything that refers to them (a review button's submission id, the
audit log's details) stays true. The copy runs in one transaction on the target: it lands whole
or not at all. Afterwards every table is compared row by row (checkpoints by their SHA-256,
which is also recomputed from the bytes that arrived), and the report says what it found.

A target that already has rows is refused, unless ``force``: then rows it lacks are added and
rows it has are left exactly as they are; nothing is ever overwritten or deleted. A rerun is
therefore harmless: a target that already holds an identical copy is reported as such and not
touched, and a forced rerun adds nothing. Rows that exist on both sides with different contents
are reported as conflicts, never resolved silently.

Checkpoints that an older DinoBot kept as files (``model_versions.checkpoint_path`` with no bytes
in the database) are read from ``legacy_dir`` and stored in the target.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

from bot.errors import DinoBotError
from bot.services.store.db import Database, Tx

log = logging.getLogger(__name__)

BATCH = 500
CHECKPOINT_BATCH = 16  # checkpoints are a few hundred KB each


@dataclass(frozen=True)
class Table:
    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def select(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {self.name}"

    @property
    def insert(self) -> str:
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {self.name} ({', '.join(self.columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"


_JOB_COLUMNS = ("id", "guild_id", "trigger", "requested_by", "requested_at", "state", "holder", "lease_expires_at",
                "attempts", "finished_at", "reason", "version")
# In foreign-key order: versions before what points at them.
TABLES = (
    Table("model_versions", ("id",), (
        "id", "guild_id", "version", "checkpoint_path", "parent_version", "names_used", "train_loss_before",
        "train_loss_after", "val_loss_before", "val_loss_after", "trigger", "requested_by", "started_at",
        "finished_at", "duration_s", "status", "reason")),
    Table("model_checkpoints", ("guild_id", "version"), ("guild_id", "version", "data", "sha256")),
    Table("submissions", ("id",), (
        "id", "guild_id", "name", "submitter_id", "created_at", "status", "status_changed_by", "status_changed_at",
        "first_trained_version")),
    Table("guild_settings", ("guild_id",), ("guild_id", "review_required", "schedule_enabled", "strength",
                                            "updated_by", "updated_at")),
    Table("keeps", ("id",), ("id", "guild_id", "name", "member_id", "created_at")),
    Table("served_versions", ("guild_id",), ("guild_id", "version", "newest_then", "chosen_by", "chosen_at")),
    Table("audit_log", ("id",), ("id", "guild_id", "actor_id", "action", "details", "created_at")),
    Table("training_jobs", ("id",), _JOB_COLUMNS),
    Table("live_replies", ("interaction_id",), ("interaction_id", "guild_id", "application_id", "token",
                                                "message_id", "created_at")),
)
CHECKPOINTS = TABLES[1]


class CopyRefused(DinoBotError):
    """The copy would not be safe as asked (a target with other data, without ``force``)."""


@dataclass
class TableReport:
    name: str
    source: int = 0  # rows in the source
    target_before: int = 0
    added: int = 0
    target_after: int = 0
    conflicts: list[str] = field(default_factory=list)  # keys present on both sides, different

    @property
    def ok(self) -> bool:
        return not self.conflicts and self.target_after >= self.source


@dataclass
class CopyReport:
    tables: list[TableReport]
    legacy_files: int = 0  # checkpoint files read from the legacy folder
    missing_files: list[str] = field(default_factory=list)
    already_copied: bool = False  # the target held an identical copy: nothing was written

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


async def copy_database(source: Database, target: Database, *, force: bool = False,
                        legacy_dir: Path | None = None) -> CopyReport:
    """Copy every row of ``source`` into ``target`` (both open, at the same schema) and check it."""
    if await source.schema_version() != await target.schema_version():
        raise CopyRefused("the two databases are at different schema versions; open both with this DinoBot first")
    before = {t.name: await _count(target, t) for t in TABLES}
    if any(before.values()):
        report = await verify(source, target, before)
        if report.ok and not await _legacy_pending(source, target):
            report.already_copied = True
            return report
        if not force:
            rows = ", ".join(f"{name} {n}" for name, n in before.items() if n)
            raise CopyRefused(f"the target already has rows ({rows}) that are not an exact copy of the source; "
                              "pass --force to add only the rows it lacks (nothing is overwritten or deleted)")
    added: dict[str, int] = {}
    legacy, missing = 0, []
    async with target.transaction() as tx:
        for table in TABLES:
            added[table.name] = await _copy_table(source, tx, table)
        legacy, missing = await _copy_legacy_files(source, tx, legacy_dir)
        added[CHECKPOINTS.name] += legacy
        for table in TABLES:
            await target.sync_identity(tx, table.name)
    report = await verify(source, target, before)
    for table in report.tables:
        table.added = added[table.name]
    report.legacy_files, report.missing_files = legacy, missing
    return report


async def verify(source: Database, target: Database, before: dict[str, int] | None = None) -> CopyReport:
    """Compare every source row with the target's row of the same key (nothing is written)."""
    tables = []
    for table in TABLES:
        theirs = {_key(table, row): _comparable(table, row) async for row in _rows(target, table)}
        report = TableReport(table.name, target_before=(before or {}).get(table.name, len(theirs)),
                             target_after=len(theirs))
        async for row in _rows(source, table):
            report.source += 1
            key = _key(table, row)
            if key not in theirs:
                report.conflicts.append(f"{table.name} {key}: missing in the target")
            elif theirs[key] != _comparable(table, row):
                report.conflicts.append(f"{table.name} {key}: differs between source and target")
        tables.append(report)
    checkpoint_report = next(t for t in tables if t.name == CHECKPOINTS.name)
    checkpoint_report.conflicts += await _check_digests(target)
    return CopyReport(tables)


# ---------------------------------------------------------------------- the pieces


async def _count(db: Database, table: Table) -> int:
    return int((await db.fetch(f"SELECT count(*) FROM {table.name}"))[0][0])


async def _rows(db: Database, table: Table) -> AsyncIterator[tuple[Any, ...]]:
    """Every row in key order, a batch at a time (keyset paging: no OFFSET rescans)."""
    columns = table.columns if table is not CHECKPOINTS else ("guild_id", "version", "sha256", "length(data)")
    order = ", ".join(table.key)
    last: tuple[Any, ...] | None = None
    size = CHECKPOINT_BATCH if table is CHECKPOINTS else BATCH
    while True:
        where, params = ("", ()) if last is None else (_after(table.key), _paging(table, last))
        rows = await db.fetch(f"SELECT {', '.join(columns)} FROM {table.name} {where} ORDER BY {order} LIMIT ?",
                              (*params, size))
        for row in rows:
            yield tuple(row)
        if len(rows) < size:
            return
        last = tuple(rows[-1][i] for i in range(len(table.key)))


def _after(key: tuple[str, ...]) -> str:
    if len(key) == 1:
        return f"WHERE {key[0]} > ?"
    first, second = key
    return f"WHERE ({first} > ? OR ({first} = ? AND {second} > ?))"


async def _copy_table(source: Database, tx: Tx, table: Table) -> int:
    """Insert the source's rows the target lacks, a batch at a time; the number added."""
    count = f"SELECT count(*) FROM {table.name}"
    before = int((await tx.fetch(count))[0][0])
    last: tuple[Any, ...] | None = None
    size = CHECKPOINT_BATCH if table is CHECKPOINTS else BATCH
    order = ", ".join(table.key)
    while True:
        where, params = ("", ()) if last is None else (_after(table.key), _paging(table, last))
        rows = [tuple(r) for r in await source.fetch(f"{table.select} {where} ORDER BY {order} LIMIT ?",
                                                     (*params, size))]
        if rows:
            await tx.executemany(table.insert, rows)
        if len(rows) < size:
            return int((await tx.fetch(count))[0][0]) - before
        last = rows[-1][:len(table.key)]


def _paging(table: Table, last: tuple[Any, ...]) -> tuple[Any, ...]:
    return last if len(table.key) == 1 else (last[0], last[0], last[1])


async def _legacy_versions(source: Database) -> list[tuple[int, int, str]]:
    rows = await source.fetch(
        "SELECT guild_id, version, checkpoint_path FROM model_versions AS v WHERE status = 'promoted'"
        " AND checkpoint_path IS NOT NULL AND NOT EXISTS (SELECT 1 FROM model_checkpoints AS c"
        " WHERE c.guild_id = v.guild_id AND c.version = v.version) ORDER BY guild_id, version")
    return [(int(r[0]), int(r[1]), str(r[2])) for r in rows]


async def _legacy_pending(source: Database, target: Database) -> list[tuple[int, int, str]]:
    """Legacy file checkpoints of the source that the target does not hold yet."""
    pending = []
    for guild_id, version, stored in await _legacy_versions(source):
        if not await target.fetch("SELECT 1 FROM model_checkpoints WHERE guild_id = ? AND version = ?",
                                  (guild_id, version)):
            pending.append((guild_id, version, stored))
    return pending


async def _copy_legacy_files(source: Database, tx: Tx, legacy_dir: Path | None) -> tuple[int, list[str]]:
    copied, missing = 0, []
    for guild_id, version, stored in await _legacy_versions(source):
        path = (legacy_dir or Path()) / stored
        try:
            data = path.read_bytes()
        except OSError:
            missing.append(str(path))
            continue
        done = await tx.fetch(CHECKPOINTS.insert + " RETURNING 1",
                              (guild_id, version, data, hashlib.sha256(data).hexdigest()))
        copied += len(done)
    return copied, missing


async def _check_digests(db: Database) -> list[str]:
    """Recompute every stored checkpoint's SHA-256 from its bytes."""
    problems = []
    last: tuple[Any, ...] | None = None
    while True:
        where, params = ("", ()) if last is None else (_after(CHECKPOINTS.key), _paging(CHECKPOINTS, last))
        rows = await db.fetch(f"SELECT guild_id, version, data, sha256 FROM model_checkpoints {where}"
                              " ORDER BY guild_id, version LIMIT ?", (*params, CHECKPOINT_BATCH))
        for guild_id, version, data, digest in rows:
            if hashlib.sha256(bytes(data)).hexdigest() != digest:
                problems.append(f"model_checkpoints ({guild_id}, {version}): bytes do not match their SHA-256")
        if len(rows) < CHECKPOINT_BATCH:
            return problems
        last = (rows[-1][0], rows[-1][1])


def _key(table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(row[:len(table.key)])


def _comparable(table: Table, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row as both backends agree on it (JSON compared as data, not as text)."""
    if table.name == "audit_log":
        return (*row[:4], json.loads(row[4]), *row[5:])
    return row
