"""A fake Discord on 127.0.0.1 for testing the real discord.py client end to end.

The bot under test runs unmodified: :meth:`FakeDiscord.patch_discord` only points discord.py's
REST base and gateway URL at this server. Tests then inject what users do (slash commands,
button clicks, modal submissions) and read what the bot answered::

    from tests.support.fake_discord import FakeDiscord, FakeGuild

    async with FakeDiscord(guilds=[FakeGuild(id=1000)]) as fake, fake.patch_discord():
        ...start the bot: await bot.login(fake.token); asyncio.create_task(bot.connect())...
        await fake.wait_for_ready()
        handle = await fake.slash("dinoname", {"prefix": "tyr", "count": 3})
        callback = await handle.response()           # {"type": 4, "data": {...}}
        more = await fake.click(handle.original, label="More")
        await fake.drop_connection()                  # the bot must RESUME
        await fake.wait_for_resume()
        fake.assert_clean()

Modules, one job each. State: ``guilds`` (users, roles, channels, members, guilds), ``messages``
(messages, attachments, uploads), ``permissions``, ``snowflakes``. Payloads: ``payloads`` (READY,
INTERACTION_CREATE, the application, ...), ``interaction_data`` (what a slash command, click or
modal submission carries). The facade, ``server.FakeDiscord``, is assembled from ``waiting``,
``injecting`` (slash, click, ...), ``message_store``, ``world`` (guilds, users, DMs), ``commands``
and ``checks`` (``assert_clean``, ``api_errors``), with ``patching`` to point discord.py at it.
``interactions`` has the handles tests hold; ``gateway/`` the websocket sessions per shard
(resume, replay, heartbeats, dispatch); ``rest/`` the HTTP plumbing, Discord's limits and one
module of routes per resource.
"""

from .commands import SyncCall
from .gateway import FakeGateway, GatewayConnection, SentEvent, ShardSession, shard_for
from .guilds import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser
from .interactions import InteractionHandle, LateInteraction
from .messages import FakeAttachment, FakeMessage, Upload
from .permissions import ADMINISTRATOR, ALL_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, MANAGE_GUILD
from .rest import RecordedRequest
from .server import FakeDiscord
from .waiting import WaitTimeout
from .world import DEFAULT_GUILD

__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "DEFAULT_GUILD",
    "MANAGE_GUILD",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGateway",
    "FakeGuild",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "GatewayConnection",
    "InteractionHandle",
    "LateInteraction",
    "RecordedRequest",
    "SentEvent",
    "ShardSession",
    "SyncCall",
    "Upload",
    "WaitTimeout",
    "shard_for",
]
