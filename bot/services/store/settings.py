"""Per-server switches (review, scheduled fine-tuning), changed only with an audit entry."""
from __future__ import annotations

from dataclasses import fields

from bot.services.records import GuildSettings
from bot.services.store.audit import insert_audit
from bot.services.store.db import Database, lock_key

SETTINGS_FIELDS = tuple(f.name for f in fields(GuildSettings) if f.name != "guild_id")
_SELECT = f"SELECT {', '.join(SETTINGS_FIELDS)} FROM guild_settings WHERE guild_id = ?"


class SettingsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings, or the defaults if it never changed any."""
        rows = await self._db.fetch(_SELECT, (guild_id,))
        return GuildSettings(guild_id, *map(bool, rows[0])) if rows else GuildSettings(guild_id)

    async def update(self, guild_id: int, actor_id: int, **changes: bool) -> GuildSettings:
        """Change some of the settings; audit-logged.

        Only fields whose value actually changes are written and logged (details record
        ``{field: {"from": old, "to": new}}``). Unknown fields raise ``ValueError``.
        """
        unknown = sorted(set(changes) - set(SETTINGS_FIELDS))
        if unknown:
            raise ValueError(f"unknown guild settings: {', '.join(unknown)}")
        wanted = {k: bool(v) for k, v in changes.items()}
        async with self._db.transaction(lock_key("guild", guild_id)) as tx:
            rows = await tx.fetch(_SELECT, (guild_id,))
            old = GuildSettings(guild_id, *map(bool, rows[0])) if rows else GuildSettings(guild_id)
            diff = {k: {"from": getattr(old, k), "to": v}
                    for k, v in wanted.items() if getattr(old, k) != v}
            if not diff:
                return old
            new = GuildSettings(guild_id, **{**{k: getattr(old, k) for k in SETTINGS_FIELDS}, **wanted})
            now = self._db.now()
            await tx.execute(
                "INSERT INTO guild_settings (guild_id, review_required, schedule_enabled,"
                " updated_by, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id) DO UPDATE SET review_required = excluded.review_required,"
                " schedule_enabled = excluded.schedule_enabled, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (guild_id, int(new.review_required), int(new.schedule_enabled), actor_id, now),
            )
            await insert_audit(tx, guild_id, actor_id, "settings.update", diff, now)
        return new
