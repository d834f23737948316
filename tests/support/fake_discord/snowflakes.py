"""Snowflake ids and timestamps: how the fake mints ids that discord.py can read times from.

Kept apart because every store in the fake (messages, attachments, interactions, commands, DM
channels) needs fresh ids, and discord.py derives ``created_at`` and an interaction's expiry
from them, so they have to look like Discord's.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone

DISCORD_EPOCH_MS = 1420070400000


def iso_now() -> str:
    """The current UTC time in the ISO 8601 form Discord uses for timestamps."""
    return datetime.now(timezone.utc).isoformat()


class SnowflakeGenerator:
    """Makes unique, time-ordered Discord snowflakes.

    Real-looking snowflakes matter: discord.py derives ``created_at`` and an interaction's
    ``expires_at`` (15 minutes after creation) from the id, so ids minted "now" keep
    ``Interaction.is_expired()`` honest.
    """

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._last = 0

    def __call__(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        snowflake = (ms << 22) | (next(self._counter) & 0x3FFFFF)
        # Never go backwards, even if the wall clock does.
        self._last = max(self._last + 1, snowflake)
        return self._last
