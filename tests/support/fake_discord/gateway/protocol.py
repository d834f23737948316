"""The gateway's wire vocabulary: opcodes, close codes, and which shard carries which guild.

Apart from the sessions and the socket handling so that the numbers Discord documents, and the
shard formula tests check against, stand in one short place.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

# Gateway opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

CLOSE_UNKNOWN_ERROR = 4000
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010
#: Client close codes that end a session for good (Discord: the bot goes offline, no RESUME).
CLOSE_CODES_ENDING_SESSION = (1000, 1001)
#: Events whose payload is the guild itself (its id is ``id``, not ``guild_id``).
GUILD_PAYLOAD_EVENTS = ("GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE")


def shard_for(guild_id: Optional[int], shard_count: int) -> int:
    """The shard that carries a guild's events: Discord's ``(guild_id >> 22) % shard_count``.

    ``None`` (a DM, or an event about no guild) is shard 0, where Discord sends DMs.
    """
    if guild_id is None:
        return 0
    return (guild_id >> 22) % shard_count


def event_guild_id(name: str, data: Any) -> Optional[int]:
    """Which guild an event is about, read from its payload (``None``: a DM or no guild)."""
    if not isinstance(data, dict):
        return None
    raw = data.get("id") if name in GUILD_PAYLOAD_EVENTS else data.get("guild_id")
    return int(raw) if raw is not None else None


def parse_shard(raw: Any) -> Optional[Tuple[int, int]]:
    """``[id, count]`` from an IDENTIFY (absent: ``(0, 1)``); ``None`` if it is not a valid shard."""
    if raw is None:
        return (0, 1)
    if not isinstance(raw, (list, tuple)) or len(raw) != 2 or not all(type(v) is int for v in raw):
        return None
    shard_id, shard_count = raw
    return (shard_id, shard_count) if 0 <= shard_id < shard_count else None
