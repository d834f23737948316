"""Members' names: submitting, reviewing, listing, and what a fine-tune trains on.

Every write is one transaction with bound parameters, and a method returns (acknowledges)
only after its commit. Nothing is ever deleted: removing a name is a status change recorded in
the audit log. The per-member submission limit is a *rolling* 24 hours, not a UTC day: nobody
can submit 2 x limit names around midnight, and the error says exactly when the next slot opens.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Iterable, KeysView

from bot.errors import DailyLimitReached, DuplicateName, KnownDinosaur, NotFound
from bot.services.records import Status, Submission
from bot.services.store.audit import insert_audit
from bot.services.store.db import Database, Row, Tx, UniqueViolation, limit_value, lock_key
from model.errors import InvalidName
from model.vocab import normalize_name, normalize_prefix

DAY_SECONDS = 24 * 60 * 60
_SQLITE_MIN, _SQLITE_MAX = -(2**63), 2**63 - 1  # an INTEGER column's range
EXPORT_CHUNK = 10_000  # rows per round trip when exporting a guild's names

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

@dataclass(frozen=True)
class TrainingSample:
    """The approved names one fine-tune uses, alphabetical, and how many of them are new."""

    names: tuple[str, ...]
    new: int  # names no earlier version trained on


_COLUMNS = ("id, guild_id, name, submitter_id, created_at, status, status_changed_by, "
            "status_changed_at, first_trained_version")


class SubmissionStore:
    """A guild's submitted names. ``known_names`` (the base corpus) are refused as real dinosaurs."""

    def __init__(self, db: Database, *, daily_limit: int | None, known_names: Iterable[str]) -> None:
        self._db = db
        self.daily_limit = daily_limit
        self.known_names = frozenset(n.strip().lower() for n in known_names)
        # guild -> every name ever submitted there, so /dinoname's avoid-set costs no query per
        # request. The entry exists *before* its query runs and submit() adds every committed
        # name to an existing entry, so a name committed while the query runs is never missed.
        self._submitted: dict[int, _NameCache] = {}

    async def submit(self, guild_id: int, user_id: int, raw_name: str) -> Submission:
        """Store a member's name for a guild and return it once committed.

        The whole write is one ``INSERT ... SELECT ... RETURNING`` statement run as its own
        transaction (``Database.write_one``), and this returns only after that commit. The
        limit check is part of the statement, so it cannot race another write of the member.

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
        now = self._db.now()
        limit = -1 if self.daily_limit is None else self.daily_limit
        params = {"guild": guild_id, "name": name, "user": user_id, "now": now,
                  "since": now - DAY_SECONDS, "limit": limit}
        try:
            # The lock makes one member's submissions take turns (on PostgreSQL; SQLite has
            # one writer anyway), so two at once cannot both pass the limit check.
            rows = await self._db.write_one(_SUBMIT_SQL, params, lock=lock_key("member", guild_id, user_id))
        except UniqueViolation:
            raise DuplicateName(name) from None
        if not rows:
            raise await self._limit_error(self._db, guild_id, user_id, now)
        self.remember(guild_id, name)
        (row,) = rows
        return Submission(row["id"], guild_id, name, user_id, now, Status(row["status"]))

    async def insert_within(self, tx: Tx, guild_id: int, user_id: int, name: str, now: float) -> Submission:
        """:meth:`submit`'s insert (daily limit, review status) inside the caller's transaction.

        For a write that adds a name together with rows of its own (a kept name and its first
        keep); the transaction must hold ``lock_key("member", guild_id, user_id)`` as submit()
        does. ``name`` must already be normalised and checked against the known dinosaurs;
        raises :class:`DailyLimitReached`. Call :meth:`remember` after the commit.
        """
        limit = -1 if self.daily_limit is None else self.daily_limit
        params = {"guild": guild_id, "name": name, "user": user_id, "now": now,
                  "since": now - DAY_SECONDS, "limit": limit}
        rows = await tx.fetch(_SUBMIT_SQL, params)
        if not rows:
            raise await self._limit_error(tx, guild_id, user_id, now)  # the lock is held: read in tx
        (row,) = rows
        return Submission(row["id"], guild_id, name, user_id, now, Status(row["status"]))

    def remember(self, guild_id: int, name: str) -> None:
        """Add a name committed by another part of the store to the in-memory avoid-set."""
        if (cache := self._submitted.get(guild_id)) is not None:
            cache.names[name] = None

    async def _limit_error(self, reader: Database | Tx, guild_id: int, user_id: int,
                           now: float) -> DailyLimitReached:
        """Say when the member's count in the window drops below the limit again.

        That is 24 h after the (count - limit + 1)-th oldest submission in the window; usually
        the oldest, unless the limit was lowered since they submitted.
        """
        assert self.daily_limit is not None
        rows = await reader.fetch(
            "SELECT created_at FROM submissions WHERE guild_id = ? AND submitter_id = ?"
            " AND created_at > ? ORDER BY created_at",
            (guild_id, user_id, now - DAY_SECONDS),
        )
        times = [r["created_at"] for r in rows]
        index = max(0, len(times) - self.daily_limit)
        resets_at = (times[index] if times else now) + DAY_SECONDS
        return DailyLimitReached(self.daily_limit, resets_at, now)

    async def get(self, guild_id: int, name_or_id: int | str) -> Submission:
        """One submission by id (int) or name (str, normalised); :class:`NotFound` otherwise."""
        column, key = _lookup(name_or_id)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM submissions WHERE guild_id = ? AND {column} = ?", (guild_id, key))
        if not rows:
            raise NotFound(_describe_lookup(name_or_id))
        return _submission(rows[0])

    async def list(self, guild_id: int, status: Status | str | None = None,
                   limit: int | None = None, offset: int = 0) -> list[Submission]:
        """A guild's submissions in alphabetical order, optionally of one status, paged."""
        where, params = _status_filter(guild_id, status)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM submissions WHERE {where} ORDER BY name LIMIT ? OFFSET ?",
            (*params, limit_value(self._db, limit), offset))
        return [_submission(r) for r in rows]

    async def export(self, guild_id: int, status: Status | str | None = None) -> str:
        """A guild's names as text, one a line, alphabetical (with a tab and the status when
        ``status`` is None): a names file the model CLI reads.

        Read in chunks of ``EXPORT_CHUNK`` names (each its own short read, in index order after
        the last name seen), so a server with 500 000 names neither holds the database lock
        for long nor needs half a million row objects at once: it costs the text, a few MB.
        """
        where, params = _status_filter(guild_id, status)
        column = "name || char(9) || status" if status is None else "name"
        parts: list[str] = []
        after = ""
        while True:
            rows = await self._db.fetch(
                f"SELECT name, {column} FROM submissions WHERE {where} AND name > ? ORDER BY name LIMIT ?",
                (*params, after, EXPORT_CHUNK))
            parts.append("".join(f"{row[1]}\n" for row in rows))
            if len(rows) < EXPORT_CHUNK:
                return "".join(parts)
            after = rows[-1][0]

    async def recent(self, guild_id: int, status: Status | str | None = None,
                     limit: int | None = 20) -> list[Submission]:
        """A guild's newest submissions first (what ``/names list`` shows), optionally of one status.

        Ordered by id, not ``created_at``: ids follow commit order even if the clock steps back.
        """
        where, params = _status_filter(guild_id, status)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM submissions WHERE {where} ORDER BY id DESC LIMIT ?",
            (*params, limit_value(self._db, limit)))
        return [_submission(r) for r in rows]

    async def starting_with(self, guild_id: int, prefix: str, limit: int = 25) -> list[str]:
        """Names of a guild that are not removed and start with ``prefix`` (a–z), alphabetically.

        What ``/names remove`` suggests while a moderator types. ``prefix`` is normalised, so
        LIKE's wildcards cannot occur in it; anything else gives no names.
        """
        try:
            start = normalize_prefix(prefix)
        except InvalidName:
            return []
        rows = await self._db.fetch(
            "SELECT name FROM submissions WHERE guild_id = ? AND status <> 'removed' AND name LIKE ?"
            " ORDER BY name LIMIT ?", (guild_id, start + "%", limit_value(self._db, limit)))
        return [r["name"] for r in rows]

    async def count(self, guild_id: int, status: Status | str | None = None) -> int:
        """How many submissions a guild has, optionally of one status."""
        where, params = _status_filter(guild_id, status)
        rows = await self._db.fetch(f"SELECT count(*) FROM submissions WHERE {where}", params)
        return int(rows[0][0])

    async def pending(self, guild_id: int, limit: int | None = 25) -> list[Submission]:
        """The review queue: pending submissions, oldest first."""
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM submissions WHERE guild_id = ? AND status = 'pending'"
            " ORDER BY id LIMIT ?", (guild_id, limit_value(self._db, limit)))
        return [_submission(r) for r in rows]

    async def set_status(self, guild_id: int, name_or_id: int | str, status: Status | str,
                         actor_id: int, *, only_from: Status | str | None = None) -> Submission:
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
        async with self._db.transaction(lock_key("guild", guild_id)) as tx:
            rows = await tx.fetch(
                f"SELECT {_COLUMNS} FROM submissions WHERE guild_id = ? AND {column} = ?",
                (guild_id, key))
            if not rows:
                raise NotFound(_describe_lookup(name_or_id))
            old = _submission(rows[0])
            if old.status is new or (expected is not None and old.status is not expected):
                return old
            now = self._db.now()
            await tx.execute(
                "UPDATE submissions SET status = ?, status_changed_by = ?, status_changed_at = ?"
                " WHERE id = ?", (new.value, actor_id, now, old.id))
            details = {"id": old.id, "name": old.name, "from": old.status.value, "to": new.value}
            await insert_audit(tx, guild_id, actor_id, f"submission.{new.value}", details, now)
        return Submission(old.id, guild_id, old.name, old.submitter_id, old.created_at, new,
                          actor_id, now, old.first_trained_version)

    async def approved(self, guild_id: int) -> list[str]:
        """Every approved name of a guild, alphabetically: the guild's training corpus."""
        rows = await self._db.fetch(
            "SELECT name FROM submissions WHERE guild_id = ? AND status = 'approved' ORDER BY name",
            (guild_id,))
        return [r["name"] for r in rows]

    async def training_sample(self, guild_id: int, limit: int, recent: int) -> TrainingSample:
        """At most ``limit`` approved names of a guild for one fine-tune: a bounded mix.

        The ``recent`` newest names no version has trained on yet (then the newest others, if
        there are fewer), plus a uniformly random draw from all the other approved names for
        the rest. A fine-tune so learns what is new first and keeps the whole corpus in view,
        at a cost that stops growing with the server: a server with 100 000 names gives 2 000
        names, read with two bounded queries, never the whole list.
        """
        recent = max(0, min(recent, limit))
        async with self._db.transaction() as tx:  # one snapshot for both reads
            newest = await tx.fetch(
                "SELECT id, name, first_trained_version IS NULL AS new FROM submissions"
                " WHERE guild_id = ? AND status = 'approved'"
                " ORDER BY first_trained_version IS NOT NULL, id DESC LIMIT ?", (guild_id, recent))
            chosen = {row["id"]: row for row in newest}
            drawn = await tx.fetch(
                "SELECT id, name, first_trained_version IS NULL AS new FROM submissions"
                " WHERE guild_id = ? AND status = 'approved' ORDER BY random() LIMIT ?",
                (guild_id, limit))  # over-drawn by up to `recent`: those already chosen are skipped
        for row in drawn:
            if len(chosen) >= limit:
                break
            chosen.setdefault(row["id"], row)
        rows = sorted(chosen.values(), key=lambda row: row["name"])
        return TrainingSample(tuple(row["name"] for row in rows), sum(bool(row["new"]) for row in rows))

    async def submitted(self, guild_id: int) -> KeysView[str]:
        """Every name ever submitted in a guild, whatever its status: what generation avoids.

        A live, read-only view of the guild's set, shared by every caller rather than copied
        (a copy per ``/dinoname`` cost milliseconds in a server with 100 000 names): it grows as
        names are submitted, and offers ``in``, ``len`` and iteration but no way to change it.
        Rows are never deleted, so the set only grows. A server belongs to one process of a
        cluster (its shard's), and that process is the one submitting to it; after a restart the
        set is read afresh. Another thread may test ``name in view`` (the GIL makes that safe)
        but must not iterate it, since the event loop may add a name meanwhile.
        """
        while True:
            cache = self._submitted.get(guild_id)
            if cache is None:
                return await self._load_submitted(guild_id)
            if await asyncio.shield(cache.loaded):  # False: that read failed; try it ourselves
                return cache.names.keys()

    async def _load_submitted(self, guild_id: int) -> KeysView[str]:
        cache = self._submitted[guild_id] = _NameCache()
        try:
            rows = await self._db.fetch("SELECT name FROM submissions WHERE guild_id = ?", (guild_id,))
        except BaseException:
            del self._submitted[guild_id]
            cache.loaded.set_result(False)
            raise
        cache.names.update(dict.fromkeys(r["name"] for r in rows))
        cache.loaded.set_result(True)
        return cache.names.keys()

    async def count_new(self, guild_id: int) -> int:
        """Approved names no model version of this guild has trained on yet."""
        rows = await self._db.fetch(
            "SELECT count(*) FROM submissions WHERE guild_id = ? AND status = 'approved'"
            " AND first_trained_version IS NULL", (guild_id,))
        return int(rows[0][0])

    async def guilds_with_new(self, min_new: int, *, only_scheduled: bool = False) -> dict[int, int]:
        """Guilds with at least ``min_new`` untrained approved names: {guild_id: count}.

        With ``only_scheduled``, guilds that switched the fine-tune schedule off are left out,
        which is what the periodic scheduler wants.
        """
        rows = await self._db.fetch(
            "SELECT s.guild_id, count(*) AS n FROM submissions AS s"
            " LEFT JOIN guild_settings AS g ON g.guild_id = s.guild_id"
            " WHERE s.status = 'approved' AND s.first_trained_version IS NULL"
            " AND (? = 0 OR COALESCE(g.schedule_enabled, 1) = 1)"
            " GROUP BY s.guild_id HAVING count(*) >= ? ORDER BY s.guild_id",
            (int(only_scheduled), min_new))
        return {r["guild_id"]: r["n"] for r in rows}


class _NameCache:
    """One guild's submitted names, and whether its first read finished."""

    def __init__(self) -> None:
        self.names: dict[str, None] = {}  # an insertion-ordered set whose keys() view is shared
        self.loaded: asyncio.Future[bool] = asyncio.get_running_loop().create_future()


def _submission(row: Row) -> Submission:
    return Submission(row["id"], row["guild_id"], row["name"], row["submitter_id"], row["created_at"],
                      Status(row["status"]), row["status_changed_by"], row["status_changed_at"],
                      row["first_trained_version"])


def _lookup(name_or_id: int | str) -> tuple[str, int | str]:
    """(column, key) for a submission given by id or by (user-typed) name."""
    if isinstance(name_or_id, bool) or not isinstance(name_or_id, (int, str)):
        raise TypeError(f"a submission is named by int id or str name, not {name_or_id!r}")
    if isinstance(name_or_id, int):
        if not _SQLITE_MIN <= name_or_id <= _SQLITE_MAX:  # e.g. a button id from a stale or forged message
            raise NotFound(_describe_lookup(name_or_id))
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
