"""One websocket connection's life: HELLO, heartbeats, IDENTIFY or RESUME, and closing.

Apart from event dispatch because this is where sessions begin and end: IDENTIFY starts a fresh
session for its shard (READY + the shard's GUILD_CREATEs), RESUME re-attaches a session and
replays what the client missed, heartbeats are answered (and their times recorded, so a test can
prove the event loop never starved discord.py's heartbeat thread), and a close either leaves the
session resumable or ends it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Dict, Tuple

from aiohttp import WSMsgType, web

from .dispatch import GatewayDispatch
from .protocol import (
    CLOSE_AUTHENTICATION_FAILED,
    CLOSE_CODES_ENDING_SESSION,
    CLOSE_INVALID_SHARD,
    OP_HEARTBEAT,
    OP_HEARTBEAT_ACK,
    OP_HELLO,
    OP_IDENTIFY,
    OP_INVALID_SESSION,
    OP_PRESENCE_UPDATE,
    OP_REQUEST_GUILD_MEMBERS,
    OP_RESUME,
    OP_VOICE_STATE_UPDATE,
    parse_shard,
)
from .session import GatewayConnection, ShardSession, Socket

log = logging.getLogger("fake_discord.gateway")


class GatewayConnections(GatewayDispatch):
    """The websocket endpoint and the client frames it answers."""

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
        socket = Socket(ws, request, conn)
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

    def _on_closed(self, socket: Socket) -> None:
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

    async def _on_frame(self, socket: Socket, frame: Dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == OP_HEARTBEAT:
            await self._on_heartbeat(socket, data)
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

    async def _on_heartbeat(self, socket: Socket, seq: Any) -> None:
        socket.conn.heartbeats.append(time.perf_counter())
        socket.conn.heartbeat_seqs.append(seq)
        self._fake._notify()
        if self.ack_heartbeats:
            await self._send_raw(socket.ws, {"op": OP_HEARTBEAT_ACK})

    async def _identify(self, socket: Socket, data: Dict[str, Any]) -> None:
        ws, conn = socket.ws, socket.conn
        conn.kind = "identify"
        self.identify_payloads.append(data)
        if data.get("token") != self._fake.token:
            log.warning("IDENTIFY with a wrong token")
            await ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        shard = parse_shard(data.get("shard"))
        if shard is None:
            log.warning("IDENTIFY with an invalid shard %r", data.get("shard"))
            await ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return
        async with self._lock:
            if ws.closed:
                return
            await self._start_session(socket, shard)
        self._fake._notify()

    async def _start_session(self, socket: Socket, shard: Tuple[int, int]) -> None:
        """A new session for the shard (under the lock): READY and its guilds' GUILD_CREATEs."""
        shard_id, shard_count = shard
        if self.shard_count is not None and shard_count != self.shard_count:
            # A new shard layout: the old layout's sessions stop receiving events.
            log.info("shard count changes from %d to %d: dropping the old sessions", self.shard_count, shard_count)
            self.sessions = {}
        self.shard_count = shard_count
        # A new session for the shard: whatever the old one still had queued is gone, as on Discord.
        session = ShardSession(shard_id, shard_count, uuid.uuid4().hex)
        self.sessions[shard_id] = session
        session.attach(socket)
        socket.conn.shard = shard
        ready = self._fake._ready_payload(session.session_id, shard=list(shard))
        await self._send_event(session, session.append("READY", ready))
        for guild in self._fake._guild_create_payloads(shard):
            await self._send_event(session, session.append("GUILD_CREATE", guild))
        socket.conn.ready = True
        session._flowing = session._socket is socket

    async def _resume(self, socket: Socket, data: Dict[str, Any]) -> None:
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
