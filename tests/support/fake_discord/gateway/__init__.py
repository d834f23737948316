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

The package's parts: ``protocol`` (opcodes, close codes, the shard formula), ``session`` (sessions,
connections and sent events: what tests assert on), ``state`` (what the gateway keeps),
``connection`` (HELLO, heartbeats, IDENTIFY, RESUME, closing), ``dispatch`` (numbering and routing
events), ``faults`` (breaking things on purpose) and ``inspection`` (read-only views for tests).
"""

from __future__ import annotations

from .connection import GatewayConnections
from .faults import GatewayFaults
from .inspection import GatewayInspection
from .protocol import CLOSE_UNKNOWN_ERROR, shard_for
from .session import GatewayConnection, SentEvent, ShardSession


class FakeGateway(GatewayInspection, GatewayConnections, GatewayFaults):
    """The websocket half of :class:`~tests.support.fake_discord.FakeDiscord`: one session per shard.

    A bot that does not shard has exactly one session (shard ``[0, 1]``), and the single-session
    helpers (``session_id``, ``seq``, ``events``, ``drop``, ...) then need no ``shard_id``. With
    several shards connected, pass ``shard_id`` or look at ``sessions[shard_id]``.
    """


__all__ = [
    "CLOSE_UNKNOWN_ERROR",
    "FakeGateway",
    "GatewayConnection",
    "SentEvent",
    "ShardSession",
    "shard_for",
]
