"""Read-only views of the gateway for assertions: sequence numbers, events, readiness, heartbeats.

Apart from the code that runs the sockets so that what tests read (``fake.gateway.ready_count``,
``heartbeat_gaps()``, ...) is listed in one place; an unsharded bot's single session needs no
``shard_id`` here.
"""

from __future__ import annotations

import itertools
from typing import List, Optional

from .session import GatewayConnection, SentEvent, ShardSession
from .state import GatewayState


class GatewayInspection(GatewayState):
    """The assertion-facing half of :class:`FakeGateway`."""

    def _only_session(self) -> Optional[ShardSession]:
        return self.session() if self.sessions else None

    @property
    def session_id(self) -> Optional[str]:
        """The unsharded bot's session id (``None`` before IDENTIFY)."""
        session = self._only_session()
        return session.session_id if session else None

    @property
    def seq(self) -> int:
        """The unsharded bot's last sequence number."""
        session = self._only_session()
        return session.seq if session else 0

    @property
    def events(self) -> List[SentEvent]:
        """Every dispatch of the unsharded bot's session, in sequence order."""
        session = self._only_session()
        return session.events if session else []

    @property
    def live(self) -> bool:
        """True when every session still in use has a connection past READY or RESUMED."""
        in_use = [session for session in self.sessions.values() if not session.ended]
        return bool(in_use) and all(session.live for session in in_use)

    @property
    def current(self) -> Optional[GatewayConnection]:
        """The most recently opened connection."""
        return self._conn

    def count(self, kind: str, *, resumed: Optional[bool] = None) -> int:
        """How many connections tried to identify (``"identify"``) or resume (``"resume"``)."""
        return sum(1 for c in self.connections if c.kind == kind and (resumed is None or c.resumed == resumed))

    @property
    def ready_count(self) -> int:
        """How many sessions were started (READY sent), over all shards."""
        return sum(1 for c in self.connections if c.ready)

    @property
    def heartbeats(self) -> List[float]:
        return [beat for conn in self.connections for beat in conn.heartbeats]

    def heartbeat_gaps(self) -> List[float]:
        """Seconds between consecutive heartbeats on the same connection.

        discord.py sends one heartbeat right after HELLO and then one every interval from its
        keep-alive thread; a gap much larger than the interval means the event loop was blocked.
        """
        gaps: List[float] = []
        for conn in self.connections:
            gaps.extend(later - earlier for earlier, later in itertools.pairwise(conn.heartbeats))
        return gaps
