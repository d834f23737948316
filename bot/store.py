"""Where DinoBot keeps what must survive a restart: names, model versions, settings, audit.

One SQLite file, one :mod:`aiosqlite` connection. aiosqlite runs every statement on its own
thread, so the event loop never waits for the disk; an :class:`asyncio.Lock` around every
operation serialises them, which gives two guarantees cheaply: writes never interleave, and a
read never sees another coroutine's transaction before it commits (on a shared connection it
otherwise would).

Durability
    The database runs in WAL mode with ``synchronous=FULL`` by default. In WAL mode NORMAL
    already survives a crash of the *process* (kill -9 included): a committed transaction is in
    the WAL file in the OS page cache, and the kernel writes it out. Only a power loss or kernel
    panic can lose the last transactions. FULL also fsyncs the WAL at every commit, so a
    submission we acknowledged survives a power cut too. Acknowledging a name to a member is a
    promise, and ``benchmarks/bench_store.py`` measures FULL well above the 2 000 submissions/s
    target on our machine (about 2x; NORMAL is about 1.7x faster still), so FULL is the
    default; ``synchronous="NORMAL"`` remains available for disks where fsync is slow.

Time
    Every timestamp is unix seconds as a float (UTC by definition), taken from an injectable
    ``clock`` so tests can move time. The per-member submission limit is a *rolling* 24 hours,
    not a UTC day: nobody can submit 2 x limit names around midnight, and the error says exactly
    when the next slot opens.

Every write is one transaction with bound parameters, and a method returns (acknowledges)
only after its commit: ``BEGIN IMMEDIATE`` ... ``COMMIT`` for multi-statement writes, and for
:meth:`Store.submit`, the hot path, a single statement that SQLite commits on its own.
Nothing is ever deleted: removing a name is a status change recorded in the audit log.
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import math
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable, Literal, Mapping

import aiosqlite

from model.vocab import normalize_name

from .errors import (
    DailyLimitReached,
    DuplicateName,
    KnownDinosaur,
    NotFound,
    SchemaTooNew,
    StorageError,
)
from .migrations import MIGRATIONS, SCHEMA_VERSION, split_statements

log = logging.getLogger(__name__)

DAY_SECONDS = 24 * 60 * 60
DEFAULT_DB_PATH = Path("data") / "dinobot.sqlite3"
BUSY_TIMEOUT_MS = 5000
Synchronous = Literal["NORMAL", "FULL"]


class _TextEnum(str, enum.Enum):
    """A ``str`` enum that prints as its value on every Python version (3.12 changed format())."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(_TextEnum):
    """A submission's status. A ``str`` subclass, so ``Status.APPROVED == "approved"``."""

    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"
    REMOVED = "removed"


class Trigger(_TextEnum):
    """What started a fine-tune."""

    SCHEDULE = "schedule"
    ADMIN = "admin"


class VersionStatus(_TextEnum):
    """What became of a fine-tuned model: served, or thrown away (with a reason)."""

    PROMOTED = "promoted"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class Submission:
    """One submitted name, as stored."""

    id: int
    guild_id: int
    name: str
    submitter_id: int
    created_at: float
    status: Status
    status_changed_by: int | None = None
    status_changed_at: float | None = None
    first_trained_version: int | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One fine-tune attempt for one guild, promoted or discarded."""

    guild_id: int
    version: int
    checkpoint_path: str | None
    parent_version: int | None
    names_used: int
    train_loss_before: float | None
    train_loss_after: float | None
    val_loss_before: float | None
    val_loss_after: float | None
    trigger: Trigger
    requested_by: int | None
    started_at: float
    finished_at: float
    duration_s: float
    status: VersionStatus
    reason: str


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """Per-guild switches; a guild that never changed anything gets the defaults."""

    guild_id: int
    review_required: bool = False
    schedule_enabled: bool = True


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action: who did what, when, with a JSON-able ``details`` dict."""

    id: int
    guild_id: int
    actor_id: int
    action: str
    details: dict[str, Any]
    created_at: float


_SETTINGS_FIELDS = ("review_required", "schedule_enabled")

# Insert only if the member is under the limit, with the status the guild's review setting
# asks for, in one statement (so one implicit transaction): the check and the insert cannot be
# separated by another write. The 'approved' fallback mirrors review_required's default of 0.
# No row back means the limit refused it; a UNIQUE violation means a duplicate.
_SUBMIT_SQL = """
INSERT INTO submissions (guild_id, name, submitter_id, created_at, status)
SELECT :guild, :name, :user, :now,
       COALESCE((SELECT CASE review_required WHEN 1 THEN 'pending' ELSE 'approved' END
                 FROM guild_settings WHERE guild_id = :guild), 'approved')
WHERE :limit < 0
   OR (SELECT count(*) FROM submissions
       WHERE guild_id = :guild AND submitter_id = :user AND created_at > :since) < :limit
RETURNING id, status
"""

_SUBMISSION_COLUMNS = (
    "id, guild_id, name, submitter_id, created_at, status, status_changed_by, "
    "status_changed_at, first_trained_version"
)


class Store:
    """Async access to DinoBot's SQLite database. Create with ``await Store.open(path)``."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: Path,
        *,
        daily_limit: int | None,
        known_names: frozenset[str],
        clock: Callable[[], float],
    ) -> None:
        """Use :meth:`open`; this only wires an already configured connection."""
        self._db = db
        self._lock = asyncio.Lock()
        self._closed = False
        self.path = path
        self.daily_limit = daily_limit
        self.known_names = known_names
        self._clock = clock
        # guild -> every name ever submitted there; filled on first use, then kept current by
        # submit() under the same lock, so /dinoname's avoid-set costs no query per request.
        self._submitted: dict[int, set[str]] = {}

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(
        cls,
        path: str | Path = DEFAULT_DB_PATH,
        *,
        daily_limit: int | None = 20,
        known_names: Iterable[str] = frozenset(),
        synchronous: Synchronous = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> "Store":
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        ``daily_limit`` is submissions per member per guild per rolling 24 h (None: no limit).
        ``known_names`` are base-corpus names, refused as already known dinosaurs.
        Raises :class:`SchemaTooNew` for a database written by a newer DinoBot, without
        touching it.
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            await _configure(db, path, synchronous)
            await _migrate(db)
        except BaseException:
            await db.close()
            raise
        known = frozenset(n.strip().lower() for n in known_names)
        log.info("opened %s (schema v%d, synchronous=%s)", path, SCHEMA_VERSION, synchronous)
        return cls(db, path, daily_limit=daily_limit, known_names=known, clock=clock)

    async def close(self) -> None:
        """Wait for the operation in progress, then close; closing twice is harmless."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            await self._db.close()
        log.info("closed %s", self.path)

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ plumbing

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Hold the lock for one ``BEGIN IMMEDIATE`` ... ``COMMIT``; roll back on any error.

        IMMEDIATE takes SQLite's write lock at the start, so another process cannot slip a
        write between our reads and writes, and busy_timeout (not a late SQLITE_BUSY at
        commit) handles contention. The rollback is shielded: if the caller is cancelled, the
        statements already queued on aiosqlite's thread still run, and the rollback queued
        after them undoes them before the next operation can start.
        """
        async with self._lock:
            self._check_open()
            try:
                # Inside the try: a cancel while BEGIN is queued must still queue a ROLLBACK.
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException:
                await asyncio.shield(self._rollback())
                raise

    async def _rollback(self) -> None:
        try:
            await self._db.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:  # the COMMIT went through before a cancel
            log.debug("rollback after failed operation: %s", exc)

    async def _fetch(self, sql: str, params: Mapping[str, Any] | tuple = ()) -> list[sqlite3.Row]:
        """Run one read under the lock, so it never sees another coroutine's open transaction."""
        async with self._lock:
            self._check_open()
            return list(await self._db.execute_fetchall(sql, params))

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the database is closed")

    def _now(self) -> float:
        return float(self._clock())

    # ------------------------------------------------------------------ submissions

    async def submit(self, guild_id: int, user_id: int, raw_name: str) -> Submission:
        """Store a member's name for a guild and return it once committed.

        The whole write is one ``INSERT ... SELECT ... RETURNING`` statement run outside any
        explicit transaction, so SQLite runs it as its own transaction and commits it (fsync
        included, under FULL) before the statement reports done, which is before
        ``execute_fetchall`` returns. The limit check is part of that statement, so it cannot
        race another write, and a submit costs one round trip to the database thread instead
        of three (BEGIN, INSERT, COMMIT): that is what keeps FULL well above 2 000/s.

        The status is ``pending`` if the guild requires review, else ``approved``. Every stored
        submission counts towards the member's limit whatever its status becomes, so rejected
        spam still uses it up; refused attempts (invalid, known, duplicate) store nothing and
        do not count.
        Raises ``model.errors.InvalidName`` (not a–z, wrong length), :class:`KnownDinosaur`,
        :class:`DuplicateName` or :class:`DailyLimitReached`; nothing is written then.
        """
        name = normalize_name(raw_name)
        if name in self.known_names:
            raise KnownDinosaur(name)
        now = self._now()
        limit = -1 if self.daily_limit is None else self.daily_limit
        params = {"guild": guild_id, "name": name, "user": user_id, "now": now,
                  "since": now - DAY_SECONDS, "limit": limit}
        try:
            async with self._lock:
                self._check_open()
                rows = await self._db.execute_fetchall(_SUBMIT_SQL, params)
                if self._db.in_transaction:  # would mean the insert is not committed yet
                    await self._rollback()
                    raise StorageError("a submission was left uncommitted; nothing was saved")
                if not rows:
                    raise await self._limit_error(self._db, guild_id, user_id, now)
                if guild_id in self._submitted:
                    self._submitted[guild_id].add(name)
        except sqlite3.IntegrityError as exc:
            if _is_unique_violation(exc):
                raise DuplicateName(name) from None
            raise
        (row,) = rows
        return Submission(row["id"], guild_id, name, user_id, now, Status(row["status"]))

    async def _limit_error(
        self, db: aiosqlite.Connection, guild_id: int, user_id: int, now: float
    ) -> DailyLimitReached:
        """Say when the member's count in the window drops below the limit again.

        That is 24 h after the (count - limit + 1)-th oldest submission in the window; usually
        the oldest, unless the limit was lowered since they submitted.
        """
        assert self.daily_limit is not None
        rows = await db.execute_fetchall(
            "SELECT created_at FROM submissions WHERE guild_id = ? AND submitter_id = ?"
            " AND created_at > ? ORDER BY created_at",
            (guild_id, user_id, now - DAY_SECONDS),
        )
        times = [r["created_at"] for r in rows]
        index = max(0, len(times) - self.daily_limit)
        resets_at = (times[index] if times else now) + DAY_SECONDS
        return DailyLimitReached(self.daily_limit, resets_at, now)

    async def get_submission(self, guild_id: int, name_or_id: int | str) -> Submission:
        """One submission by id (int) or name (str, normalised); :class:`NotFound` otherwise."""
        column, key = _lookup(name_or_id)
        rows = await self._fetch(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE guild_id = ? AND {column} = ?",
            (guild_id, key),
        )
        if not rows:
            raise NotFound(_describe_lookup(name_or_id))
        return _submission(rows[0])

    async def list_names(
        self,
        guild_id: int,
        status: Status | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Submission]:
        """A guild's submissions in alphabetical order, optionally of one status, paged."""
        where, params = _status_filter(guild_id, status)
        rows = await self._fetch(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE {where}"
            " ORDER BY name LIMIT ? OFFSET ?",
            (*params, _sql_limit(limit), offset),
        )
        return [_submission(r) for r in rows]

    async def recent_names(
        self, guild_id: int, status: Status | str | None = None, limit: int | None = 20
    ) -> list[Submission]:
        """A guild's newest submissions first (what ``/names list`` shows), optionally of one status.

        Ordered by id, not ``created_at``: ids follow commit order even if the clock steps back.
        """
        where, params = _status_filter(guild_id, status)
        rows = await self._fetch(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions WHERE {where} ORDER BY id DESC LIMIT ?",
            (*params, _sql_limit(limit)),
        )
        return [_submission(r) for r in rows]

    async def count_names(self, guild_id: int, status: Status | str | None = None) -> int:
        """How many submissions a guild has, optionally of one status."""
        where, params = _status_filter(guild_id, status)
        rows = await self._fetch(f"SELECT count(*) FROM submissions WHERE {where}", params)
        return int(rows[0][0])

    async def pending(self, guild_id: int, limit: int | None = 25) -> list[Submission]:
        """The review queue: pending submissions, oldest first."""
        rows = await self._fetch(
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions"
            " WHERE guild_id = ? AND status = 'pending' ORDER BY id LIMIT ?",
            (guild_id, _sql_limit(limit)),
        )
        return [_submission(r) for r in rows]

    async def set_status(
        self,
        guild_id: int,
        name_or_id: int | str,
        status: Status | str,
        actor_id: int,
        *,
        only_from: Status | str | None = None,
    ) -> Submission:
        """Approve, reject, remove (or send back to pending) a submission, with an audit entry.

        The row is never deleted, so a removal can be undone and the audit log stays true.
        Setting the status it already has changes nothing and logs nothing.
        With ``only_from``, the change happens only if the submission has that status now
        (checked in the same transaction); otherwise it is returned unchanged. Two moderators
        clicking on the same pending name cannot then overwrite each other's decision.
        Raises :class:`NotFound` if the guild has no such submission.
        """
        new = Status(status)
        expected = None if only_from is None else Status(only_from)
        column, key = _lookup(name_or_id)
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions"
                f" WHERE guild_id = ? AND {column} = ?",
                (guild_id, key),
            )
            if not rows:
                raise NotFound(_describe_lookup(name_or_id))
            old = _submission(rows[0])
            if old.status is new or (expected is not None and old.status is not expected):
                return old
            now = self._now()
            await db.execute(
                "UPDATE submissions SET status = ?, status_changed_by = ?, status_changed_at = ?"
                " WHERE id = ?",
                (new.value, actor_id, now, old.id),
            )
            details = {"id": old.id, "name": old.name, "from": old.status.value, "to": new.value}
            await _insert_audit(db, guild_id, actor_id, f"submission.{new.value}", details, now)
        return Submission(
            old.id, guild_id, old.name, old.submitter_id, old.created_at, new,
            actor_id, now, old.first_trained_version,
        )

    async def approved_names(self, guild_id: int) -> list[str]:
        """Every approved name of a guild, alphabetically: the guild's training corpus."""
        rows = await self._fetch(
            "SELECT name FROM submissions WHERE guild_id = ? AND status = 'approved'"
            " ORDER BY name",
            (guild_id,),
        )
        return [r["name"] for r in rows]

    async def submitted_names(self, guild_id: int) -> frozenset[str]:
        """Every name ever submitted in a guild, whatever its status: what generation avoids.

        Served from memory after the first call (rows are never deleted, so the set only grows,
        and submit() adds to it under the lock that also guards this read).
        """
        async with self._lock:
            self._check_open()
            if guild_id not in self._submitted:
                rows = await self._db.execute_fetchall(
                    "SELECT name FROM submissions WHERE guild_id = ?", (guild_id,))
                self._submitted[guild_id] = {r["name"] for r in rows}
            return frozenset(self._submitted[guild_id])

    async def names_since_version(self, guild_id: int) -> list[str]:
        """Approved names no model version of this guild has trained on yet, alphabetically."""
        rows = await self._fetch(
            "SELECT name FROM submissions WHERE guild_id = ? AND status = 'approved'"
            " AND first_trained_version IS NULL ORDER BY name",
            (guild_id,),
        )
        return [r["name"] for r in rows]

    async def count_new_names(self, guild_id: int) -> int:
        """``len(names_since_version(guild_id))`` without fetching the names."""
        rows = await self._fetch(
            "SELECT count(*) FROM submissions WHERE guild_id = ? AND status = 'approved'"
            " AND first_trained_version IS NULL",
            (guild_id,),
        )
        return int(rows[0][0])

    async def guilds_with_new_names(
        self, min_new: int, *, only_scheduled: bool = False
    ) -> dict[int, int]:
        """Guilds with at least ``min_new`` untrained approved names: {guild_id: count}.

        With ``only_scheduled``, guilds that switched the fine-tune schedule off are left out,
        which is what the periodic scheduler wants.
        """
        rows = await self._fetch(
            "SELECT s.guild_id, count(*) AS n FROM submissions AS s"
            " LEFT JOIN guild_settings AS g ON g.guild_id = s.guild_id"
            " WHERE s.status = 'approved' AND s.first_trained_version IS NULL"
            " AND (? = 0 OR COALESCE(g.schedule_enabled, 1) = 1)"
            " GROUP BY s.guild_id HAVING count(*) >= ? ORDER BY s.guild_id",
            (int(only_scheduled), min_new),
        )
        return {r["guild_id"]: r["n"] for r in rows}

    async def mark_trained(self, guild_id: int, names: Iterable[str], version: int) -> int:
        """Record that ``version`` first trained on ``names``; returns how many rows changed.

        Names a version already trained on keep their first version. Raises
        :class:`NotFound` if the guild has no such model version.
        """
        async with self._transaction() as db:
            return await _mark_trained(db, guild_id, list(names), version)

    # ------------------------------------------------------------------ model versions

    async def next_version(self, guild_id: int) -> int:
        """The number :meth:`record_version` will give this guild's next version.

        Lets the training service name the checkpoint file before the row exists (the file is
        written first, then the row committed). One training at a time, so nobody races it;
        if someone did, the UNIQUE(guild_id, version) constraint would refuse the second.
        """
        rows = await self._fetch(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE guild_id = ?",
            (guild_id,),
        )
        return int(rows[0][0])

    async def record_version(
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

        ``version`` defaults to :meth:`next_version`. ``parent_version`` None means the base
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
        async with self._transaction() as db:
            if version is None:
                rows = await db.execute_fetchall(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE guild_id = ?",
                    (guild_id,),
                )
                version = int(rows[0][0])
            if parent_version is not None and parent_version >= version:
                raise NotFound(f"parent model version {parent_version}")
            values = (
                guild_id, version, None if checkpoint_path is None else str(checkpoint_path),
                parent_version, names_used, _real(train_loss_before), _real(train_loss_after),
                _real(val_loss_before), _real(val_loss_after), trig.value, requested_by,
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

    async def latest_promoted(self, guild_id: int) -> ModelVersion | None:
        """The guild's newest promoted version (what it should be served), or None: the base."""
        rows = await self._fetch(
            "SELECT * FROM model_versions WHERE guild_id = ? AND status = 'promoted'"
            " ORDER BY version DESC LIMIT 1",
            (guild_id,),
        )
        return _model_version(rows[0]) if rows else None

    async def versions(
        self, guild_id: int, status: VersionStatus | str | None = None
    ) -> list[ModelVersion]:
        """A guild's fine-tunes, oldest first, optionally only promoted or discarded ones.

        ``versions(g, "promoted")`` read backwards is the fallback chain when the newest
        checkpoint turns out to be missing or corrupt.
        """
        if status is None:
            rows = await self._fetch(
                "SELECT * FROM model_versions WHERE guild_id = ? ORDER BY version", (guild_id,)
            )
        else:
            rows = await self._fetch(
                "SELECT * FROM model_versions WHERE guild_id = ? AND status = ? ORDER BY version",
                (guild_id, VersionStatus(status).value),
            )
        return [_model_version(r) for r in rows]

    # ------------------------------------------------------------------ settings and audit

    async def get_settings(self, guild_id: int) -> GuildSettings:
        """The guild's settings, or the defaults if it never changed any."""
        rows = await self._fetch(
            "SELECT review_required, schedule_enabled FROM guild_settings WHERE guild_id = ?",
            (guild_id,),
        )
        if not rows:
            return GuildSettings(guild_id)
        return GuildSettings(guild_id, bool(rows[0][0]), bool(rows[0][1]))

    async def update_settings(self, guild_id: int, actor_id: int, **changes: bool) -> GuildSettings:
        """Change some of ``review_required`` / ``schedule_enabled``; audit-logged.

        Only fields whose value actually changes are written and logged (details record
        ``{field: {"from": old, "to": new}}``). Unknown fields raise ``ValueError``.
        """
        unknown = sorted(set(changes) - set(_SETTINGS_FIELDS))
        if unknown:
            raise ValueError(f"unknown guild settings: {', '.join(unknown)}")
        wanted = {k: bool(v) for k, v in changes.items()}
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT review_required, schedule_enabled FROM guild_settings WHERE guild_id = ?",
                (guild_id,),
            )
            old = GuildSettings(guild_id, *map(bool, rows[0])) if rows else GuildSettings(guild_id)
            diff = {k: {"from": getattr(old, k), "to": v}
                    for k, v in wanted.items() if getattr(old, k) != v}
            if not diff:
                return old
            new = GuildSettings(guild_id, **{**_settings_dict(old), **wanted})
            now = self._now()
            await db.execute(
                "INSERT INTO guild_settings (guild_id, review_required, schedule_enabled,"
                " updated_by, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id) DO UPDATE SET review_required = excluded.review_required,"
                " schedule_enabled = excluded.schedule_enabled, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (guild_id, int(new.review_required), int(new.schedule_enabled), actor_id, now),
            )
            await _insert_audit(db, guild_id, actor_id, "settings.update", diff, now)
        return new

    async def log_action(
        self, guild_id: int, actor_id: int, action: str, details: Mapping[str, Any] | None = None
    ) -> int:
        """Append an admin action other services perform (e.g. "finetune.request"); its id."""
        async with self._transaction() as db:
            return await _insert_audit(db, guild_id, actor_id, action, details or {}, self._now())

    async def audit(self, guild_id: int, limit: int | None = 50) -> list[AuditEntry]:
        """A guild's audit log, newest first."""
        rows = await self._fetch(
            "SELECT id, guild_id, actor_id, action, details, created_at FROM audit_log"
            " WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, _sql_limit(limit)),
        )
        return [
            AuditEntry(r["id"], r["guild_id"], r["actor_id"], r["action"],
                       json.loads(r["details"]), r["created_at"])
            for r in rows
        ]

    # ------------------------------------------------------------------ maintenance

    async def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` plus a foreign-key check: "ok" when all is well."""
        rows = await self._fetch("PRAGMA integrity_check")
        problems = [r[0] for r in rows if r[0] != "ok"]
        fk_rows = await self._fetch("PRAGMA foreign_key_check")
        problems += [f"foreign key violation in {r[0]} row {r[1]} -> {r[2]}" for r in fk_rows]
        return "\n".join(problems) or "ok"

    async def journal_mode(self) -> str:
        """The journal mode actually in force ("wal"); for health checks and tests."""
        rows = await self._fetch("PRAGMA journal_mode")
        return str(rows[0][0])


# ---------------------------------------------------------------------- opening and migrating


async def _configure(db: aiosqlite.Connection, path: Path, synchronous: Synchronous) -> None:
    """Per-connection settings, after making sure the file is not from a newer DinoBot.

    The version check comes first so that a newer database is refused untouched (switching it
    to WAL would already be a change).
    """
    await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
    found = await _user_version(db)
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(str(path), found, SCHEMA_VERSION)
    rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
    mode = str(rows[0][0]).lower()
    if mode != "wal":
        raise StorageError(f"{path}: SQLite refused WAL mode (got {mode!r}); use a local disk")
    # PRAGMA takes no bound parameters; both values are checked constants.
    await db.execute(f"PRAGMA synchronous = {synchronous}")
    await db.execute("PRAGMA foreign_keys = ON")


async def _user_version(db: aiosqlite.Connection) -> int:
    rows = await db.execute_fetchall("PRAGMA user_version")
    return int(rows[0][0])


async def _migrate(db: aiosqlite.Connection) -> None:
    """Apply the missing migrations, each with its ``user_version`` bump in one transaction.

    The version is re-read inside the write lock, so two processes opening the same file
    at once cannot both apply a migration.
    """
    for target, script in enumerate(MIGRATIONS, start=1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await _user_version(db)
            if current >= target:
                await db.execute("ROLLBACK")
                continue
            for statement in split_statements(script):
                await db.execute(statement)
            await db.execute(f"PRAGMA user_version = {int(target):d}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        log.info("migrated database schema from v%d to v%d", target - 1, target)


# ---------------------------------------------------------------------- row helpers


async def _insert_audit(
    db: aiosqlite.Connection,
    guild_id: int,
    actor_id: int,
    action: str,
    details: Mapping[str, Any],
    now: float,
) -> int:
    cursor = await db.execute(
        "INSERT INTO audit_log (guild_id, actor_id, action, details, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (guild_id, actor_id, action, json.dumps(dict(details), sort_keys=True), now),
    )
    return int(cursor.lastrowid)


async def _mark_trained(
    db: aiosqlite.Connection, guild_id: int, names: list[str], version: int
) -> int:
    rows = await db.execute_fetchall(
        "SELECT 1 FROM model_versions WHERE guild_id = ? AND version = ?", (guild_id, version)
    )
    if not rows:
        raise NotFound(f"model version {version}")
    cursor = await db.executemany(
        "UPDATE submissions SET first_trained_version = ?"
        " WHERE guild_id = ? AND name = ? AND first_trained_version IS NULL",
        [(version, guild_id, name) for name in names],
    )
    return max(0, cursor.rowcount)  # executemany's rowcount sums the rows each update changed


def _version_error(exc: sqlite3.IntegrityError, version: int, parent: int | None) -> Exception:
    if _is_unique_violation(exc):
        return StorageError(f"model version {version} is already recorded for this server")
    if "FOREIGN KEY" in str(exc):
        return NotFound(f"parent model version {parent}")
    return exc


def _is_unique_violation(exc: sqlite3.IntegrityError) -> bool:
    code = getattr(exc, "sqlite_errorname", None)  # Python 3.11+
    if code is not None:
        return code in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
    return "UNIQUE constraint failed" in str(exc)


def _submission(row: sqlite3.Row) -> Submission:
    return Submission(
        row["id"], row["guild_id"], row["name"], row["submitter_id"], row["created_at"],
        Status(row["status"]), row["status_changed_by"], row["status_changed_at"],
        row["first_trained_version"],
    )


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


def _settings_dict(settings: GuildSettings) -> dict[str, bool]:
    return {k: getattr(settings, k) for k in _SETTINGS_FIELDS}


def _lookup(name_or_id: int | str) -> tuple[str, int | str]:
    """(column, key) for a submission given by id or by (user-typed) name."""
    if isinstance(name_or_id, bool) or not isinstance(name_or_id, (int, str)):
        raise TypeError(f"a submission is named by int id or str name, not {name_or_id!r}")
    if isinstance(name_or_id, int):
        return "id", name_or_id
    return "name", normalize_name(name_or_id)


def _describe_lookup(name_or_id: int | str) -> str:
    if isinstance(name_or_id, int):
        return f"Submission #{name_or_id}"
    return f"The name '{name_or_id.strip().lower()}'"


def _status_filter(guild_id: int, status: Status | str | None) -> tuple[str, tuple]:
    if status is None:
        return "guild_id = ?", (guild_id,)
    return "guild_id = ? AND status = ?", (guild_id, Status(status).value)


def _sql_limit(limit: int | None) -> int:
    """SQLite's LIMIT -1 means no limit."""
    return -1 if limit is None else max(0, int(limit))


def _real(value: float | None) -> float | None:
    """Losses as plain floats; NaN becomes NULL explicitly (SQLite would do it silently)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
