"""Event dispatch: numbering DISPATCH events, routing them to their guild's shard, writing frames.

Apart from the handshake (``connection``) because every event the fake sends after READY goes
through here, and the ordering rule lives here: one lock serialises sequence assignment and socket
writes, so ``seq`` order is wire order, and an event for a shard that is down waits in its session's
log for the RESUME that replays it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, Optional

from aiohttp import web

from .protocol import event_guild_id, shard_for
from .session import SentEvent, ShardSession
from .state import GatewayState

log = logging.getLogger("fake_discord.gateway")


class GatewayDispatch(GatewayState):
    """Sending frames and DISPATCH events to the session that should get them."""

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
