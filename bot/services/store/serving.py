"""Which version serves a guild when a moderator chose one (``/models use``), audited.

Without a row, a guild is served its newest promoted version (the registry's default). A row
pins an earlier version (or the base model) until a version newer than ``newest_then`` is
promoted, so a fine-tune after a rollback (which starts from the version served) takes over
as usual and no later write has to remember to clear the choice.
"""
from __future__ import annotations

from bot.errors import NotFound
from bot.services.records import ServedChoice
from bot.services.store.audit import insert_audit
from bot.services.store.db import Database, lock_key

_NEWEST_PROMOTED_SQL = "SELECT max(version) FROM model_versions WHERE guild_id = ? AND status = 'promoted'"


class ServingStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int) -> ServedChoice | None:
        """The guild's standing choice, or None if it never chose (or the choice was superseded
        by a newer promoted version)."""
        rows = await self._db.fetch(
            "SELECT version, newest_then, chosen_by, chosen_at FROM served_versions WHERE guild_id = ?",
            (guild_id,))
        if not rows:
            return None
        newest = await self._db.fetch(_NEWEST_PROMOTED_SQL, (guild_id,))
        row = rows[0]
        if (newest[0][0] or 0) > (row["newest_then"] or 0):
            return None
        return ServedChoice(guild_id, row["version"], row["newest_then"], row["chosen_by"], row["chosen_at"])

    async def choose(self, guild_id: int, version: int | None, actor_id: int, *,
                     was_serving: int | None = None) -> ServedChoice:
        """Serve ``version`` (None: the base model) from now on, with an audit entry.

        ``was_serving`` (the version served until now; None: the base) goes into the audit entry.
        Checks in the same transaction that the version exists and was promoted (raises
        :class:`NotFound` or ``ValueError``); whether its checkpoint loads is the registry's
        business, before it calls this.
        """
        async with self._db.transaction(lock_key("guild", guild_id)) as tx:
            if version is not None:
                rows = await tx.fetch(
                    "SELECT status FROM model_versions WHERE guild_id = ? AND version = ?", (guild_id, version))
                if not rows:
                    raise NotFound(f"Model version {version}")
                if rows[0]["status"] != "promoted":
                    raise ValueError(f"version {version} was {rows[0]['status']}, not promoted")
            newest = (await tx.fetch(_NEWEST_PROMOTED_SQL, (guild_id,)))[0][0]
            now = self._db.now()
            await tx.execute(
                "INSERT INTO served_versions (guild_id, version, newest_then, chosen_by, chosen_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id) DO UPDATE SET version = excluded.version,"
                " newest_then = excluded.newest_then, chosen_by = excluded.chosen_by,"
                " chosen_at = excluded.chosen_at",
                (guild_id, version, newest, actor_id, now))
            details = {"version": version, "was_serving": was_serving, "newest": newest}
            await insert_audit(tx, guild_id, actor_id, "model.use", details, now)
        return ServedChoice(guild_id, version, newest, actor_id, now)
