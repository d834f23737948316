"""Per-server settings (review, scheduled fine-tuning, strength), changed only with an audit entry."""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence

from bot.services.records import GuildSettings
from bot.services.store.audit import insert_audit
from bot.services.store.db import Database, lock_key

SETTINGS_FIELDS = tuple(f.name for f in fields(GuildSettings) if f.name != "guild_id")
STRENGTH_CHOICES = ("subtle", "normal", "strong")
_SELECT = f"SELECT {', '.join(SETTINGS_FIELDS)} FROM guild_settings WHERE guild_id = ?"
_UPSERT = (f"INSERT INTO guild_settings (guild_id, {', '.join(SETTINGS_FIELDS)}, updated_by, updated_at)"
           f" VALUES (?, {', '.join('?' for _ in SETTINGS_FIELDS)}, ?, ?)"
           f" ON CONFLICT (guild_id) DO UPDATE SET "
           + ", ".join(f"{f} = excluded.{f}" for f in (*SETTINGS_FIELDS, "updated_by", "updated_at")))


class SettingsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings, or the defaults if it never changed any."""
        return _settings(guild_id, await self._db.fetch(_SELECT, (guild_id,)))

    async def update(self, guild_id: int, actor_id: int, **changes: Any) -> GuildSettings:
        """Change some of the settings; audit-logged.

        Only fields whose value actually changes are written and logged (details record
        ``{field: {"from": old, "to": new}}``). Unknown fields or values raise ``ValueError``.
        """
        wanted = {k: _checked(k, v) for k, v in changes.items()}
        async with self._db.transaction(lock_key("guild", guild_id)) as tx:
            old = _settings(guild_id, await tx.fetch(_SELECT, (guild_id,)))
            diff = {k: {"from": getattr(old, k), "to": v} for k, v in wanted.items() if getattr(old, k) != v}
            if not diff:
                return old
            new = GuildSettings(guild_id, **{**{k: getattr(old, k) for k in SETTINGS_FIELDS}, **wanted})
            now = self._db.now()
            values = [_stored(getattr(new, k)) for k in SETTINGS_FIELDS]
            await tx.execute(_UPSERT, (guild_id, *values, actor_id, now))
            await insert_audit(tx, guild_id, actor_id, "settings.update", diff, now)
        return new


def _settings(guild_id: int, rows: Sequence) -> GuildSettings:
    if not rows:
        return GuildSettings(guild_id)
    row = dict(zip(SETTINGS_FIELDS, rows[0], strict=True))
    return GuildSettings(guild_id, **{k: v if k == "strength" else bool(v) for k, v in row.items()})


def _checked(field: str, value: Any) -> bool | str:
    if field not in SETTINGS_FIELDS:
        raise ValueError(f"unknown guild settings: {field}")
    if field == "strength":
        if value not in STRENGTH_CHOICES:
            raise ValueError(f"strength must be one of {', '.join(STRENGTH_CHOICES)}, not {value!r}")
        return value
    return bool(value)


def _stored(value: bool | str) -> int | str:
    return int(value) if isinstance(value, bool) else value
