"""The fake gateway: websocket sessions speaking Discord's gateway v10 protocol in plain JSON.

What it models, because the bot's robustness depends on it:

* HELLO → IDENTIFY → READY + one GUILD_CREATE per guild, heartbeats answered with ACKs (and
  their arrival times recorded, so a test can prove the event loop never starved the
  heartbeat thread).
* Sequence numbers and a replay log: every dispatch gets the next ``s`` and is kept, so after a
  dropped connection a RESUME replays exactly the events the client missed, then RESUMED.
  Events dispatched while no connection is live wait in the log for that replay, which is
  what Discord does and what lets a test inject an interaction *during* an outage.
* Ways to break things on purpose: close with a code, abort the TCP connection, send RECONNECT
  or INVALID_SESSION.
* Sharding: an IDENTIFY with ``shard: [id, count]`` starts a session for that shard, and every
  guild's events (its GUILD_CREATE in the READY burst, its interactions, ...) go only to the
  session of shard ``(guild_id >> 22) % count``; DMs go to shard 0. A client without a ``shard``
  field is shard ``[0, 1]``: one session that gets everything, as before sharding existed.

Frames are always sent as text, even though discord.py asks for ``compress=zlib-stream``: the
client only decompresses binary frames, so plain JSON text is accepted as is.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger("fake_discord.gateway")

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
class _Socket:
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
    _socket: Optional[_Socket] = field(default=None, repr=False)
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

    def attach(self, socket: _Socket) -> None:
        self._socket, self._flowing = socket, False

    def detach(self) -> Optional[_Socket]:
        socket, self._socket, self._flowing = self._socket, None, False
        return socket


class FakeGateway:
    """The websocket half of :class:`~tests.support.fake_discord.FakeDiscord`: one session per shard.

    A bot that does not shard has exactly one session (shard ``[0, 1]``), and the single-session
    helpers (``session_id``, ``seq``, ``events``, ``drop``, ...) then need no ``shard_id``. With
    several shards connected, pass ``shard_id`` or look at ``sessions[shard_id]``.
    """

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

    # -- state for assertions -----------------------------------------------------------

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

    # -- the websocket endpoint ---------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """aiohttp handler for ``/gateway`` and ``/gateway/resume`` (the ``resume_gateway_url``)."""
        ws = web.WebSocketResponse(timeout=2.0, max_msg_size=0)
        await ws.prepare(request)
        conn = GatewayConnection(
            index=len(self.connections),
            path=request.path,
            query=dict(request.query),
            opened_at=time.perf_counter(),
        )
        socket = _Socket(ws, request, conn)
        self.connections.append(conn)
        self._sockets.append(ws)
        self._conn = conn
        log.debug("gateway connection %d opened: %s %s", conn.index, request.path, dict(request.query))
        self._fake._notify()
        try:
            await ws.send_str(
                json.dumps({"op": OP_HELLO, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}})
            )
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    try:
                        frame = json.loads(message.data)
                    except ValueError:
                        self.unexpected_frames.append(message.data)
                        continue
                    await self._on_frame(socket, frame)
                elif message.type is WSMsgType.BINARY:
                    self.unexpected_frames.append(message.data)
        except ConnectionResetError:
            pass
        finally:
            self._on_closed(socket)
        return ws

    def _on_closed(self, socket: _Socket) -> None:
        conn, ws = socket.conn, socket.ws
        conn.closed_at = time.perf_counter()
        if conn.close_code is None:
            conn.close_code = ws.close_code
        self._sockets.remove(ws)
        for session in self.sessions.values():
            if session._socket is socket:
                session.detach()
                if conn.dropped_by_server is None and ws.close_code in CLOSE_CODES_ENDING_SESSION:
                    session.ended = True
        log.debug("gateway connection %d closed with %s", conn.index, ws.close_code)
        self._fake._notify()

    async def _on_frame(self, socket: _Socket, frame: Dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == OP_HEARTBEAT:
            socket.conn.heartbeats.append(time.perf_counter())
            socket.conn.heartbeat_seqs.append(data)
            self._fake._notify()
            if self.ack_heartbeats:
                await self._send_raw(socket.ws, {"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(socket, data)
        elif op == OP_RESUME:
            await self._resume(socket, data)
        elif op == OP_PRESENCE_UPDATE:
            socket.conn.presence_updates.append(data)
        elif op == OP_REQUEST_GUILD_MEMBERS:
            await self._send_member_chunk(data)
        elif op == OP_VOICE_STATE_UPDATE:
            pass
        else:
            log.warning("unexpected gateway frame: %r", frame)
            self.unexpected_frames.append(frame)

    async def _identify(self, socket: _Socket, data: Dict[str, Any]) -> None:
        ws, conn = socket.ws, socket.conn
        conn.kind = "identify"
        self.identify_payloads.append(data)
        if data.get("token") != self._fake.token:
            log.warning("IDENTIFY with a wrong token")
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        shard = _parse_shard(data.get("shard"))
        if shard is None:
            log.warning("IDENTIFY with an invalid shard %r", data.get("shard"))
            await ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return
        shard_id, shard_count = shard
        async with self._lock:
            if ws.closed:
                return
            if self.shard_count is not None and shard_count != self.shard_count:
                # A new shard layout: the old layout's sessions stop receiving events.
                log.info("shard count changes from %d to %d: dropping the old sessions", self.shard_count, shard_count)
                self.sessions = {}
            self.shard_count = shard_count
            # A new session for the shard: whatever the old one still had queued is gone, as on Discord.
            session = ShardSession(shard_id, shard_count, uuid.uuid4().hex)
            self.sessions[shard_id] = session
            session.attach(socket)
            conn.shard = shard
            ready = self._fake._ready_payload(session.session_id, shard=list(shard))
            await self._send_event(session, session.append("READY", ready))
            for guild in self._fake._guild_create_payloads(shard):
                await self._send_event(session, session.append("GUILD_CREATE", guild))
            conn.ready = True
            session._flowing = session._socket is socket
        self._fake._notify()

    async def _resume(self, socket: _Socket, data: Dict[str, Any]) -> None:
        ws, conn = socket.ws, socket.conn
        conn.kind = "resume"
        async with self._lock:
            if ws.closed:
                return
            session = next(
                (s for s in self.sessions.values() if s.session_id == data.get("session_id") and not s.ended), None
            )
            if data.get("token") != self._fake.token or session is None:
                conn.resumed = False
                # d=false: not resumable; discord.py then closes and IDENTIFIES afresh.
                await self._send_raw(ws, {"op": OP_INVALID_SESSION, "d": False})
            else:
                session.attach(socket)
                conn.shard = session.shard
                last_seen = data.get("seq") or 0
                missed = [event for event in session.log if event.seq > last_seen]
                for event in missed:
                    await self._send_event(session, event)
                conn.resumed = True
                conn.replayed = len(missed)
                await self._send_event(session, session.append("RESUMED", {}))
                session._flowing = session._socket is socket
        self._fake._notify()

    async def _send_member_chunk(self, data: Dict[str, Any]) -> None:
        guild = self._fake.guild(int(data["guild_id"]))
        payload: Dict[str, Any] = {
            "guild_id": data["guild_id"],
            "members": guild.to_payload(self._fake._own_members(guild))["members"] if guild else [],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            payload["nonce"] = data["nonce"]
        await self.dispatch("GUILD_MEMBERS_CHUNK", payload)

    # -- sending --------------------------------------------------------------------------

    async def _send_raw(self, ws: web.WebSocketResponse, frame: Dict[str, Any]) -> bool:
        if ws.closed:
            return False
        try:
            await ws.send_str(json.dumps(frame))
        except (ConnectionResetError, RuntimeError) as exc:
            log.debug("gateway send failed: %s", exc)
            return False
        return True

    async def _send_event(self, session: ShardSession, event: SentEvent) -> None:
        if session._socket is None:
            return
        now = time.perf_counter()
        if await self._send_raw(session._socket.ws, event.frame()):
            if event.sent_at is None:
                event.sent_at = now
            event.sends += 1
        else:
            # The socket died under us: keep the event for the RESUME replay.
            session._flowing = False

    def route(self, guild_id: Optional[int]) -> ShardSession:
        """The session that carries ``guild_id``'s events (``None``: a DM, shard 0).

        Raises ``RuntimeError`` when that shard never identified: there is no session to queue
        into, and silently dropping the event would make the test fail far from the cause.
        """
        if self.shard_count is None:
            raise RuntimeError("the bot has not identified on the fake gateway yet")
        shard_id = shard_for(guild_id, self.shard_count)
        session = self.sessions.get(shard_id)
        if session is None:
            where = f"guild {guild_id}" if guild_id is not None else "DMs"
            raise RuntimeError(
                f"{where} belong to shard {shard_id} of {self.shard_count}, which has not identified "
                f"on the fake gateway (sessions: {sorted(self.sessions)})"
            )
        return session

    async def dispatch(self, name: str, data: Any, *, guild_id: Any = "from payload") -> SentEvent:
        """Send a DISPATCH event now to its guild's shard, or keep it for replay if that shard is down.

        The guild comes from the payload (``guild_id``, or ``id`` for GUILD_CREATE/UPDATE/DELETE)
        unless given; events without one (DMs) go to shard 0. Raises ``RuntimeError`` when that
        shard has no session at all (see :meth:`route`).
        """
        if guild_id == "from payload":
            guild_id = event_guild_id(name, data)
        async with self._lock:
            try:
                session = self.route(guild_id)
            except RuntimeError as exc:
                raise RuntimeError(f"cannot dispatch {name}: {exc}") from None
            event = session.append(name, data)
            if session.live:
                await self._send_event(session, event)
        self._fake._notify()
        return event

    # -- breaking things on purpose ----------------------------------------------------------

    async def drop(
        self, *, code: int = CLOSE_UNKNOWN_ERROR, abrupt: bool = False, shard_id: Optional[int] = None
    ) -> GatewayConnection:
        """End a session's connection so the client has to reconnect and RESUME.

        ``abrupt=True`` aborts the TCP connection without a close frame (a network failure);
        otherwise a close frame with ``code`` is sent (4000 "unknown error" is resumable).
        ``shard_id`` picks the session when several shards are connected. Returns the
        connection that was dropped.
        """
        async with self._lock:
            try:
                session = self.session(shard_id)
            except LookupError as exc:
                raise RuntimeError(f"no open gateway connection to drop: {exc}") from None
            socket = session.detach()
            if socket is None or socket.ws.closed:
                raise RuntimeError(f"no open gateway connection to drop for shard {session.shard_id}")
        conn = socket.conn
        conn.dropped_by_server = "abort" if abrupt else "close"
        conn.close_code = 1006 if abrupt else code
        if abrupt:
            assert socket.request.transport is not None
            socket.request.transport.abort()
        else:
            await socket.ws.close(code=code, message=b"dropped by the fake")
        self._fake._notify()
        return conn

    def _attached_ws(self, shard_id: Optional[int]) -> Optional[web.WebSocketResponse]:
        if not self.sessions:
            return None
        socket = self.session(shard_id)._socket
        return socket.ws if socket is not None else None

    async def send_reconnect(self, *, shard_id: Optional[int] = None) -> None:
        """Op 7 RECONNECT: Discord asking the client to reconnect and resume."""
        ws = self._attached_ws(shard_id)
        if ws is not None:
            await self._send_raw(ws, {"op": OP_RECONNECT, "d": None})

    async def invalidate_session(self, *, resumable: bool = False, shard_id: Optional[int] = None) -> None:
        """Op 9 INVALID_SESSION; with ``resumable=False`` the client must IDENTIFY again."""
        ws = self._attached_ws(shard_id)
        if not resumable and self.sessions:
            session = self.session(shard_id)
            del self.sessions[session.shard_id]
        if ws is not None:
            await self._send_raw(ws, {"op": OP_INVALID_SESSION, "d": resumable})

    async def request_heartbeat(self, *, shard_id: Optional[int] = None) -> None:
        """Op 1 from the server: the client must heartbeat immediately."""
        ws = self._attached_ws(shard_id)
        if ws is not None:
            await self._send_raw(ws, {"op": OP_HEARTBEAT, "d": None})

    async def close_all(self) -> None:
        """Close every socket (used when the fake shuts down)."""
        for session in self.sessions.values():
            session._flowing = False
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake discord shutting down")


def _parse_shard(raw: Any) -> Optional[Tuple[int, int]]:
    """``[id, count]`` from an IDENTIFY (absent: ``(0, 1)``); ``None`` if it is not a valid shard."""
    if raw is None:
        return (0, 1)
    if not isinstance(raw, (list, tuple)) or len(raw) != 2 or not all(type(v) is int for v in raw):
        return None
    shard_id, shard_count = raw
    return (shard_id, shard_count) if 0 <= shard_id < shard_count else None
