"""What the fake gateway keeps: the sessions of the current shard layout and every connection.

The base the gateway's parts build on (``dispatch``, ``connection``, ``faults``, ``inspection``):
the state is declared once here, with the one lookup they all need, so each part can say what it
does without re-declaring what it touches.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from aiohttp import web

from .session import GatewayConnection, ShardSession

if TYPE_CHECKING:
    from ..server import FakeDiscord


class GatewayState:
    """The sessions by shard id, the connections in opening order, and the settings from the fake."""

    def __init__(self, fake: "FakeDiscord", *, heartbeat_interval: float, ack_heartbeats: bool) -> None:
        self._fake = fake
        #: Seconds between heartbeats announced in HELLO.
        self.heartbeat_interval = heartbeat_interval
        #: Set to False to stop acknowledging heartbeats (a "zombie" connection). Note that
        #: discord.py only notices silence after its ``heartbeat_timeout`` (60 s by default).
        self.ack_heartbeats = ack_heartbeats
        #: The sessions of the current shard layout, by shard id.
        self.sessions: Dict[int, ShardSession] = {}
        #: The shard count every current session identified with (``None`` before any IDENTIFY).
        self.shard_count: Optional[int] = None
        self.connections: List[GatewayConnection] = []
        self.identify_payloads: List[Dict[str, Any]] = []
        #: Unexpected client frames (unknown opcodes, non-JSON), for assertions.
        self.unexpected_frames: List[Any] = []
        self._conn: Optional[GatewayConnection] = None
        # Serialises sequence assignment and socket writes, so seq order == wire order.
        self._lock = asyncio.Lock()
        self._sockets: List[web.WebSocketResponse] = []

    def session(self, shard_id: Optional[int] = None) -> ShardSession:
        """The session of ``shard_id``; without one, the only session (an unsharded bot's)."""
        if shard_id is not None:
            if shard_id not in self.sessions:
                raise LookupError(f"shard {shard_id} has no session (sessions: {sorted(self.sessions)})")
            return self.sessions[shard_id]
        if len(self.sessions) == 1:
            return next(iter(self.sessions.values()))
        if not self.sessions:
            raise LookupError("no gateway session: the bot has not identified yet")
        raise LookupError(f"{len(self.sessions)} shards have sessions {sorted(self.sessions)}: pass shard_id")
