"""Checks the tests run on a database file from outside the store, with the standard sqlite3."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.services.records import ModelVersion, Status, VersionStatus
from bot.services.store import Store


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` plus a foreign-key check: "ok" when all is well."""
    con = sqlite3.connect(path)
    try:
        problems = [r[0] for r in con.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key violation in {r[0]} row {r[1]} -> {r[2]}"
                     for r in con.execute("PRAGMA foreign_key_check")]
    finally:
        con.close()
    return "\n".join(problems) or "ok"


async def untrained(store: Store, guild_id: int) -> list[str]:
    """Approved names no version has trained on yet, alphabetically."""
    return [s.name for s in await store.names.list(guild_id, Status.APPROVED)
            if s.first_trained_version is None]


async def latest_promoted(store: Store, guild_id: int) -> ModelVersion | None:
    promoted = await store.versions.list(guild_id, VersionStatus.PROMOTED)
    return promoted[-1] if promoted else None
