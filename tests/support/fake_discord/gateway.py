"""The fake gateway: one websocket session speaking Discord's gateway v10 protocol in plain JSON.

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
from typing import TYPE_CHECKING, Any, Dict, List, Optional

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


class FakeGateway:
    """The websocket half of :class:`~tests.fake_discord.FakeDiscord` (one session at a time)."""

    def __init__(self, fake: "FakeDiscord", *, heartbeat_interval: float, ack_heartbeats: bool) -> None:
        self._fake = fake
        #: Seconds between heartbeats announced in HELLO.
        self.heartbeat_interval = heartbeat_interval
        #: Set to False to stop acknowledging heartbeats (a "zombie" connection). Note that
        #: discord.py only notices silence after its ``heartbeat_timeout`` (60 s by default).
        self.ack_heartbeats = ack_heartbeats
        self.session_id: Optional[str] = None
        self.seq = 0
        self.connections: List[GatewayConnection] = []
        self.identify_payloads: List[Dict[str, Any]] = []
        #: Unexpected client frames (unknown opcodes, non-JSON), for assertions.
        self.unexpected_frames: List[Any] = []
        self._log: List[SentEvent] = []
        self._ws: Optional[web.WebSocketResponse] = None
        self._request: Optional[web.Request] = None
        self._conn: Optional[GatewayConnection] = None
        self._live = False
        # Serialises sequence assignment and socket writes, so seq order == wire order.
        self._lock = asyncio.Lock()
        self._sockets: List[web.WebSocketResponse] = []

    # -- state for assertions -----------------------------------------------------------

    @property
    def live(self) -> bool:
        """True when a connection has completed READY or RESUMED and events flow straight out."""
        return self._live and self._ws is not None and not self._ws.closed

    @property
    def current(self) -> Optional[GatewayConnection]:
        return self._conn

    @property
    def events(self) -> List[SentEvent]:
        """Every dispatch of the current session, in sequence order."""
        return list(self._log)

    def count(self, kind: str, *, resumed: Optional[bool] = None) -> int:
        """How many connections tried to identify (``"identify"``) or resume (``"resume"``)."""
        return sum(1 for c in self.connections if c.kind == kind and (resumed is None or c.resumed == resumed))

    @property
    def ready_count(self) -> int:
        """How many sessions were started (READY sent)."""
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
        self.connections.append(conn)
        self._sockets.append(ws)
        async with self._lock:
            # Discord allows one connection per session: a new socket supersedes the old one.
            self._ws, self._request, self._conn, self._live = ws, request, conn, False
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
                    await self._on_frame(ws, conn, frame)
                elif message.type is WSMsgType.BINARY:
                    self.unexpected_frames.append(message.data)
        except ConnectionResetError:
            pass
        finally:
            conn.closed_at = time.perf_counter()
            if conn.close_code is None:
                conn.close_code = ws.close_code
            self._sockets.remove(ws)
            if self._ws is ws:
                self._ws, self._request, self._live = None, None, False
            log.debug("gateway connection %d closed with %s", conn.index, ws.close_code)
            self._fake._notify()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, conn: GatewayConnection, frame: Dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == OP_HEARTBEAT:
            conn.heartbeats.append(time.perf_counter())
            conn.heartbeat_seqs.append(data)
            self._fake._notify()
            if self.ack_heartbeats:
                await self._send_raw(ws, {"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(ws, conn, data)
        elif op == OP_RESUME:
            await self._resume(ws, conn, data)
        elif op == OP_PRESENCE_UPDATE:
            conn.presence_updates.append(data)
        elif op == OP_REQUEST_GUILD_MEMBERS:
            await self._send_member_chunk(data)
        elif op == OP_VOICE_STATE_UPDATE:
            pass
        else:
            log.warning("unexpected gateway frame: %r", frame)
            self.unexpected_frames.append(frame)

    async def _identify(self, ws: web.WebSocketResponse, conn: GatewayConnection, data: Dict[str, Any]) -> None:
        conn.kind = "identify"
        self.identify_payloads.append(data)
        if data.get("token") != self._fake.token:
            log.warning("IDENTIFY with a wrong token")
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        async with self._lock:
            if ws is not self._ws:
                return
            # A new session: whatever the old one still had queued is gone, as on Discord.
            self.session_id = uuid.uuid4().hex
            self.seq = 0
            self._log = []
            ready = self._fake._ready_payload(self.session_id, shard=data.get("shard"))
            await self._send_event(ws, self._append("READY", ready))
            for guild in self._fake._guild_create_payloads():
                await self._send_event(ws, self._append("GUILD_CREATE", guild))
            conn.ready = True
            self._live = True
        self._fake._notify()

    async def _resume(self, ws: web.WebSocketResponse, conn: GatewayConnection, data: Dict[str, Any]) -> None:
        conn.kind = "resume"
        async with self._lock:
            if ws is not self._ws:
                return
            valid = (
                data.get("token") == self._fake.token
                and self.session_id is not None
                and data.get("session_id") == self.session_id
            )
            if not valid:
                conn.resumed = False
                # d=false: not resumable; discord.py then closes and IDENTIFIES afresh.
                await self._send_raw(ws, {"op": OP_INVALID_SESSION, "d": False})
            else:
                last_seen = data.get("seq") or 0
                missed = [event for event in self._log if event.seq > last_seen]
                for event in missed:
                    await self._send_event(ws, event)
                conn.resumed = True
                conn.replayed = len(missed)
                await self._send_event(ws, self._append("RESUMED", {}))
                self._live = True
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

    def _append(self, name: str, data: Any) -> SentEvent:
        self.seq += 1
        event = SentEvent(seq=self.seq, name=name, data=data)
        self._log.append(event)
        return event

    async def _send_raw(self, ws: web.WebSocketResponse, frame: Dict[str, Any]) -> bool:
        if ws.closed:
            return False
        try:
            await ws.send_str(json.dumps(frame))
        except (ConnectionResetError, RuntimeError) as exc:
            log.debug("gateway send failed: %s", exc)
            return False
        return True

    async def _send_event(self, ws: web.WebSocketResponse, event: SentEvent) -> None:
        now = time.perf_counter()
        if await self._send_raw(ws, event.frame()):
            if event.sent_at is None:
                event.sent_at = now
            event.sends += 1
        else:
            # The socket died under us: keep the event for the RESUME replay.
            self._live = False

    async def dispatch(self, name: str, data: Any) -> SentEvent:
        """Send a DISPATCH event now, or keep it for replay if no connection is live.

        Raises ``RuntimeError`` before the bot has identified at all: there is no session to
        queue into, and silently dropping the event would make the test fail far from the cause.
        """
        async with self._lock:
            if self.session_id is None:
                raise RuntimeError(f"cannot dispatch {name}: the bot has not identified on the fake gateway yet")
            event = self._append(name, data)
            if self._live and self._ws is not None:
                await self._send_event(self._ws, event)
        self._fake._notify()
        return event

    # -- breaking things on purpose ----------------------------------------------------------

    async def drop(self, *, code: int = CLOSE_UNKNOWN_ERROR, abrupt: bool = False) -> GatewayConnection:
        """End the current connection so the client has to reconnect and RESUME.

        ``abrupt=True`` aborts the TCP connection without a close frame (a network failure);
        otherwise a close frame with ``code`` is sent (4000 "unknown error" is resumable).
        Returns the connection that was dropped.
        """
        async with self._lock:
            ws, request, conn = self._ws, self._request, self._conn
            if ws is None or conn is None or ws.closed:
                raise RuntimeError("no open gateway connection to drop")
            self._live = False
            self._ws, self._request = None, None
        conn.dropped_by_server = "abort" if abrupt else "close"
        conn.close_code = 1006 if abrupt else code
        if abrupt:
            assert request is not None and request.transport is not None
            request.transport.abort()
        else:
            await ws.close(code=code, message=b"dropped by the fake")
        self._fake._notify()
        return conn

    async def send_reconnect(self) -> None:
        """Op 7 RECONNECT: Discord asking the client to reconnect and resume."""
        if self._ws is not None:
            await self._send_raw(self._ws, {"op": OP_RECONNECT, "d": None})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Op 9 INVALID_SESSION; with ``resumable=False`` the client must IDENTIFY again."""
        if not resumable:
            self.session_id = None
        if self._ws is not None:
            await self._send_raw(self._ws, {"op": OP_INVALID_SESSION, "d": resumable})

    async def request_heartbeat(self) -> None:
        """Op 1 from the server: the client must heartbeat immediately."""
        if self._ws is not None:
            await self._send_raw(self._ws, {"op": OP_HEARTBEAT, "d": None})

    async def close_all(self) -> None:
        """Close every socket (used when the fake shuts down)."""
        self._live = False
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake discord shutting down")
