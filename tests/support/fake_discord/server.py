"""``FakeDiscord``: REST + gateway on 127.0.0.1, and the facade tests talk to.

The fake is the only thing standing in for Discord in the bot's tests, so it aims to be *strict
in the places the bot can get wrong* (callback deadlines and double acknowledgements, message
limits, unknown routes, resumable sessions, which shard gets which guild's events) and simple
everywhere else (no rate limits, no permission overwrites, no MESSAGE_CREATE events for the bot's
own messages).

This module holds the facade's settings, its life cycle (listening, URLs, patching discord.py in)
and the gateway controls; the rest of its methods come from one module per job: ``waiting``,
``injecting`` (slash, click, ...), ``message_store``, ``world`` (guilds, users, DMs),
``commands`` and ``checks``.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

from aiohttp import web

from .checks import Checks
from .gateway import CLOSE_UNKNOWN_ERROR, FakeGateway, GatewayConnection, SentEvent, shard_for
from .guilds import FakeGuild, FakeUser
from .injecting import Injecting
from .message_store import MessageStore
from .patching import DiscordPatch
from .permissions import DEFAULT_APP_PERMISSIONS
from .rest import API_PREFIX, RestApi
from .snowflakes import SnowflakeGenerator
from .waiting import Waiting
from .world import GuildRef

log = logging.getLogger("fake_discord")


class FakeDiscord(Waiting, Checks, Injecting, MessageStore):
    """A fake Discord (REST API v10 + gateway) for running the real discord.py client in tests.

    Typical use::

        async with FakeDiscord(guilds=[FakeGuild(id=1000)]) as fake, fake.patch_discord():
            bot = MyBot()
            await bot.login(fake.token)
            task = asyncio.create_task(bot.connect())
            await fake.wait_for_ready()
            reply = await (await fake.slash("ping")).response()
            ...
            await bot.close()
            await task
            fake.assert_clean()

    ``interaction_deadline`` is Discord's 3 s to acknowledge an interaction: a later callback is
    refused with "Unknown interaction" exactly as Discord would (``None`` disables the check).
    ``heartbeat_interval`` is in seconds (Discord uses ~41 s; tests want it short). The fake
    outlives any one bot: messages, commands and users stay, so a test can restart the bot and
    click a button it sent before. ``port`` fixes the port (a test that starts the fake after the
    bot, to play an unreachable Discord); the default takes any free one.

    ``recommended_shards`` is what ``GET /gateway/bot`` recommends (an ``AutoShardedClient``
    without a ``shard_count`` uses it). Sharded clients get each guild's events on the
    connection of shard ``(guild_id >> 22) % shard_count`` only; see ``tests.support.fake_discord.gateway``.
    """

    def __init__(
        self,
        guilds: Sequence[FakeGuild] = (),
        *,
        token: str = "fake-bot-token",
        application_id: int = 111111111111111111,
        bot_name: str = "DinoBot",
        owner: Optional[FakeUser] = None,
        default_user: Optional[FakeUser] = None,
        heartbeat_interval: float = 1.0,
        ack_heartbeats: bool = True,
        interaction_deadline: Optional[float] = 3.0,
        attachment_size_limit: int = 10 * 1024 * 1024,
        app_permissions: int = DEFAULT_APP_PERMISSIONS,
        recommended_shards: int = 1,
        port: int = 0,
    ) -> None:
        if recommended_shards < 1:
            raise ValueError(f"recommended_shards must be at least 1, not {recommended_shards}")
        self.token = token
        self.recommended_shards = recommended_shards
        self.application_id = application_id
        #: The bot's own user: same id as the application, as for every modern Discord app.
        self.bot_user = FakeUser(id=application_id, username=bot_name, bot=True)
        #: The application's owner (what ``Bot.is_owner`` checks against).
        self.owner = owner or FakeUser(id=222222222222222222, username="app_owner")
        #: Who triggers interactions when a test does not say.
        self.default_user = default_user or FakeUser(id=333333333333333333, username="dino_fan")
        self.interaction_deadline = interaction_deadline
        self.attachment_size_limit = attachment_size_limit
        self.app_permissions = app_permissions
        self._init_world(guilds, users=(self.bot_user, self.owner, self.default_user))
        self.snowflake = SnowflakeGenerator()
        self._init_checks()
        self._init_messages()
        self._init_interactions()
        self._init_commands()
        self.gateway = FakeGateway(self, heartbeat_interval=heartbeat_interval, ack_heartbeats=ack_heartbeats)
        self.rest = RestApi(self)
        self._runner: Optional[web.AppRunner] = None
        self._wanted_port = port  # 0: any free port
        self.port: Optional[int] = None
        self._init_waiting()

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> "FakeDiscord":
        """Listen on 127.0.0.1 on a free port (never any other address)."""
        app = web.Application(middlewares=[self.rest.middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self.rest.get_attachment)
        self.rest.add_routes(app.router)
        app.router.add_route("*", "/{tail:.*}", self.rest.unknown_route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # A deep accept queue: the bot opens a connection per concurrent request, and a full
        # default queue (128) drops SYNs that are only retried after 1 s, poisoning p99.
        site = web.TCPSite(self._runner, "127.0.0.1", self._wanted_port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        log.info("fake discord listening on %s", self.base_url)
        return self

    async def close(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeDiscord":
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def rest_base(self) -> str:
        """What ``discord.http.Route.BASE`` must be: ``http://127.0.0.1:PORT/api/v10``."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` must be (a plain ``Bot`` connects here)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """Sent in READY; discord.py reconnects here to RESUME (so a test can tell the two apart)."""
        return f"ws://127.0.0.1:{self.port}/gateway/resume"

    def patch_discord(self) -> "DiscordPatch":
        """Point discord.py at this fake (``Route.BASE``, ``DEFAULT_GATEWAY``), restoring both after.

        Usable with ``with`` and with ``async with`` (so it composes with ``async with
        FakeDiscord() as fake, fake.patch_discord():``). These are class attributes, so only
        one fake can be patched in at a time.
        """
        return DiscordPatch(self.rest_base, self.gateway_url)

    # -- gateway controls ---------------------------------------------------------------------------

    async def drop_connection(
        self, *, code: int = CLOSE_UNKNOWN_ERROR, abrupt: bool = False, shard_id: Optional[int] = None
    ) -> GatewayConnection:
        """Drop the bot's gateway connection (close frame with ``code``, or a TCP abort) so it resumes.

        With several shards connected, ``shard_id`` says whose.
        """
        return await self.gateway.drop(code=code, abrupt=abrupt, shard_id=shard_id)

    async def dispatch(self, event: str, data: Any) -> SentEvent:
        """Send any gateway event (e.g. ``GUILD_DELETE``) to its guild's shard; queued while disconnected."""
        return await self.gateway.dispatch(event, data)

    def shard_of(self, guild: GuildRef) -> int:
        """The shard a guild's events go to under the connected bot's shard count (a DM: 0)."""
        target = self._resolve_guild(guild)
        return shard_for(target.id if target else None, self.gateway.shard_count or 1)

    async def add_guild(self, guild: FakeGuild) -> None:
        """The bot joins a server: remember it and send GUILD_CREATE."""
        self.guilds.append(guild)
        self._register_guild_users(guild)
        await self.gateway.dispatch("GUILD_CREATE", guild.to_payload(self._own_members(guild)))
