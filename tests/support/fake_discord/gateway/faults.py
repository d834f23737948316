"""Breaking the gateway on purpose: dropped connections, RECONNECT, INVALID_SESSION, heartbeat requests.

Apart from the normal protocol so that the outages a test can stage (and what each one leaves
behind for the client to recover from) are listed together.
"""

from __future__ import annotations

from typing import Optional

from aiohttp import web

from .dispatch import GatewayDispatch
from .protocol import CLOSE_UNKNOWN_ERROR, OP_HEARTBEAT, OP_INVALID_SESSION, OP_RECONNECT
from .session import GatewayConnection


class GatewayFaults(GatewayDispatch):
    """What a test can do to the bot's gateway connections."""

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
