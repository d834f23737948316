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

Modules: ``models`` (users, guilds, messages), ``gateway`` (websocket sessions per shard, resume, replay),
``rest`` (API routes, limits), ``interactions`` (handles, payload builders), ``server`` (the
``FakeDiscord`` that ties them together).
"""

from .gateway import FakeGateway, GatewayConnection, SentEvent, ShardSession, shard_for
from .interactions import InteractionHandle, LateInteraction
from .models import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    MANAGE_GUILD,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeRole,
    FakeUser,
    RecordedRequest,
    Upload,
)
from .server import DEFAULT_GUILD, FakeDiscord, SyncCall, WaitTimeout

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
