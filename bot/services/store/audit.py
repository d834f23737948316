"""The audit log: every moderator action, who did it and when. Rows are only ever appended."""
from __future__ import annotations

import json
from typing import Any, Mapping

from bot.services.records import AuditEntry
from bot.services.store.db import Database, Tx, limit_value, lock_key


async def insert_audit(tx: Tx, guild_id: int, actor_id: int, action: str,
                       details: Mapping[str, Any], now: float) -> int:
    """Append one entry inside the caller's transaction, so the action and its record commit
    together or not at all."""
    rows = await tx.fetch(
        "INSERT INTO audit_log (guild_id, actor_id, action, details, created_at)"
        " VALUES (?, ?, ?, ?, ?) RETURNING id",
        (guild_id, actor_id, action, json.dumps(dict(details), sort_keys=True), now),
    )
    return int(rows[0][0])


class AuditLog:
    """Reading and appending audit entries that no other write carries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def log(self, guild_id: int, actor_id: int, action: str,
                  details: Mapping[str, Any] | None = None) -> int:
        """Append an action other services perform (e.g. "finetune.request"); its id."""
        async with self._db.transaction(lock_key("guild", guild_id)) as tx:
            return await insert_audit(tx, guild_id, actor_id, action, details or {}, self._db.now())

    async def recent(self, guild_id: int, limit: int | None = 50, action: str | None = None) -> list[AuditEntry]:
        """A guild's audit log, newest first, optionally of one action (``/settings`` shows who
        last changed the settings)."""
        where, params = ("guild_id = ?", (guild_id,)) if action is None else (
            "guild_id = ? AND action = ?", (guild_id, action))
        rows = await self._db.fetch(
            "SELECT id, guild_id, actor_id, action, details, created_at FROM audit_log"
            f" WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit_value(self._db, limit)),
        )
        return [AuditEntry(r["id"], r["guild_id"], r["actor_id"], r["action"],
                           json.loads(r["details"]), r["created_at"]) for r in rows]
