"""Gateway sessions and what tests assert on: sent events, connections, and one session per shard.

A session outlives its socket (that is what makes RESUME possible), so the session, its sequence
numbers and replay log are kept apart from the code that reads and writes sockets
(``connection``, ``dispatch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from aiohttp import web

from .protocol import OP_DISPATCH


@dataclass
class SentEvent:
    """One DISPATCH of the current session, kept for replay."""

    seq: int
    name: str
    data: Any
    #: ``time.perf_counter()`` of the first time the frame was written to a socket (``None``: not yet).
    sent_at: Optional[float] = None
    #: How many times it was written (more than once means it was replayed).
    sends: int = 0

    def frame(self) -> Dict[str, Any]:
        return {"op": OP_DISPATCH, "t": self.name, "s": self.seq, "d": self.data}


@dataclass
class GatewayConnection:
    """What happened on one websocket connection, for assertions."""

    index: int
    path: str
    query: Dict[str, str]
    opened_at: float
    #: ``"identify"`` or ``"resume"`` once the client said which; ``None`` before.
    kind: Optional[str] = None
    #: ``(shard_id, shard_count)`` of the session this connection identified or resumed.
    shard: Optional[Tuple[int, int]] = None
    #: For identifies: READY and the GUILD_CREATEs were sent (False: the token was wrong).
    ready: bool = False
    #: For resumes: whether the session was resumed (False: INVALID_SESSION was sent).
    resumed: Optional[bool] = None
    #: For resumes: how many missed events were replayed.
    replayed: int = 0
    heartbeats: List[float] = field(default_factory=list)
    heartbeat_seqs: List[Optional[int]] = field(default_factory=list)
    presence_updates: List[Any] = field(default_factory=list)
    closed_at: Optional[float] = None
    #: The code that ended the connection: the fake's own when it dropped it (1006 for an
    #: abort), otherwise whatever the client closed with.
    close_code: Optional[int] = None
    #: Set when the fake (not the client) ended the connection: ``"close"`` or ``"abort"``.
    dropped_by_server: Optional[str] = None

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass
class Socket:
    """One open websocket, its HTTP request (to abort the TCP connection) and its record."""

    ws: web.WebSocketResponse
    request: web.Request
    conn: GatewayConnection


@dataclass
class ShardSession:
    """One gateway session: a shard's sequence numbers and replay log, and the socket serving it.

    The session outlives its socket: events dispatched while no socket is attached (or while it
    is down) wait in ``log`` for the RESUME that replays them.
    """

    shard_id: int
    shard_count: int
    session_id: str
    seq: int = 0
    log: List[SentEvent] = field(default_factory=list)
    #: The client closed with 1000/1001: Discord ends such a session (no RESUME, bot offline).
    ended: bool = False
    _socket: Optional[Socket] = field(default=None, repr=False)
    #: READY or RESUMED was sent on the attached socket: dispatches go straight out.
    _flowing: bool = field(default=False, repr=False)

    @property
    def shard(self) -> Tuple[int, int]:
        return (self.shard_id, self.shard_count)

    @property
    def live(self) -> bool:
        """A socket is attached, open, and past READY/RESUMED."""
        return self._flowing and self._socket is not None and not self._socket.ws.closed

    @property
    def connection(self) -> Optional[GatewayConnection]:
        """The connection serving this session now (``None`` while detached)."""
        return self._socket.conn if self._socket is not None else None

    @property
    def events(self) -> List[SentEvent]:
        return list(self.log)

    def append(self, name: str, data: Any) -> SentEvent:
        self.seq += 1
        event = SentEvent(seq=self.seq, name=name, data=data)
        self.log.append(event)
        return event

    def attach(self, socket: Socket) -> None:
        self._socket, self._flowing = socket, False

    def detach(self) -> Optional[Socket]:
        socket, self._socket, self._flowing = self._socket, None, False
        return socket
