"""Members keeping generated names: the ⭐ on a ``/dinoname`` reply, and ``/names top``.

A name is one submission however many members keep it; each member's keep is one row of
``keeps`` (unique per guild, name and member), so several keeps are votes, never duplicates.
The first keep of a name goes through exactly what ``/submit`` does — known dinosaurs refused,
the daily limit, the review setting — and adds the submission and the keep in one transaction.
Later keeps only add a vote; they store no new name, so they do not use up the daily limit.
"""
from __future__ import annotations

from bot.errors import AlreadyKept, KnownDinosaur, NotKeepable
from bot.services.records import FavouriteName, Kept, Status
from bot.services.store.db import Database, limit_value, lock_key
from bot.services.store.submissions import _COLUMNS, SubmissionStore, _submission
from model.vocab import normalize_name

_SUBMISSION_SQL = f"SELECT {_COLUMNS} FROM submissions WHERE guild_id = ? AND name = ?"

# Approved names only (the public list), most keeps first; ties go to the name kept earliest.
# The first keep is the row with the smallest id: ids follow commit order.
_TOP_SQL = """
SELECT k.name AS name, count(*) AS keeps, f.member_id AS first_by, f.created_at AS first_at
FROM keeps AS k
JOIN submissions AS s ON s.guild_id = k.guild_id AND s.name = k.name
JOIN keeps AS f ON f.id = (SELECT min(id) FROM keeps WHERE guild_id = k.guild_id AND name = k.name)
WHERE k.guild_id = ? AND s.status = 'approved'
GROUP BY k.name, f.member_id, f.created_at
ORDER BY keeps DESC, first_at, name
LIMIT ?
"""


class KeepStore:
    """Keeps per guild. Shares the submissions part's checks and its in-memory avoid-set."""

    def __init__(self, db: Database, names: SubmissionStore) -> None:
        self._db = db
        self._names = names

    async def keep(self, guild_id: int, member_id: int, raw_name: str) -> Kept:
        """Keep a name for a guild on behalf of a member; returns once committed.

        Raises ``InvalidName``, :class:`KnownDinosaur`, :class:`DailyLimitReached` (only when
        the keep would add a new name), :class:`AlreadyKept` (this member's keep is already
        counted) or :class:`NotKeepable` (a moderator rejected or removed the name). Nothing
        is written then.
        """
        name = normalize_name(raw_name)
        if name in self._names.known_names:
            raise KnownDinosaur(name)
        now = self._db.now()
        # The guild's lock: two first keeps of one name take turns (the second becomes a vote);
        # the member's: the daily limit, as in submit().
        locks = (lock_key("guild", guild_id), lock_key("member", guild_id, member_id))
        async with self._db.transaction(locks) as tx:
            rows = await tx.fetch(_SUBMISSION_SQL, (guild_id, name))
            if rows:
                sub = _submission(rows[0])
                if sub.status in (Status.REJECTED, Status.REMOVED):
                    raise NotKeepable(name, sub.status.value)
                mine = await tx.fetch(
                    "SELECT id FROM keeps WHERE guild_id = ? AND name = ? AND member_id = ?",
                    (guild_id, name, member_id))
                if mine:
                    raise AlreadyKept(name)
            else:
                sub = await self._names.insert_within(tx, guild_id, member_id, name, now)
            await tx.execute(
                "INSERT INTO keeps (guild_id, name, member_id, created_at) VALUES (?, ?, ?, ?)",
                (guild_id, name, member_id, now))
            votes = await tx.fetch(
                "SELECT member_id, created_at FROM keeps WHERE guild_id = ? AND name = ? ORDER BY id",
                (guild_id, name))
        self._names.remember(guild_id, name)
        first = votes[0]
        return Kept(sub, len(votes), not rows, first["member_id"], first["created_at"])

    async def count(self, guild_id: int, raw_name: str) -> int:
        """How many members kept this name in this guild (0 for a name nobody kept)."""
        rows = await self._db.fetch("SELECT count(*) FROM keeps WHERE guild_id = ? AND name = ?",
                                    (guild_id, normalize_name(raw_name)))
        return int(rows[0][0])

    async def top(self, guild_id: int, limit: int | None = 10) -> list[FavouriteName]:
        """The guild's favourite approved names: most keeps first, with the first keeper."""
        rows = await self._db.fetch(_TOP_SQL, (guild_id, limit_value(self._db, limit)))
        return [FavouriteName(r["name"], r["keeps"], r["first_by"], r["first_at"]) for r in rows]

