"""Small questions the tests ask a store (engine-level checks are in ``tests/support/stores.py``)."""
from __future__ import annotations

from bot.services.records import ModelVersion, Status, VersionStatus
from bot.services.store import Store


async def untrained(store: Store, guild_id: int) -> list[str]:
    """Approved names no version has trained on yet, alphabetically."""
    return [s.name for s in await store.names.list(guild_id, Status.APPROVED)
            if s.first_trained_version is None]


async def latest_promoted(store: Store, guild_id: int) -> ModelVersion | None:
    promoted = await store.versions.list(guild_id, VersionStatus.PROMOTED)
    return promoted[-1] if promoted else None
