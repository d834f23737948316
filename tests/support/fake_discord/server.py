"""``FakeDiscord``: REST + gateway on 127.0.0.1, the state they share, and the test-facing helpers.

The fake is the only thing standing in for Discord in the bot's tests, so it aims to be *strict
in the places the bot can get wrong* (callback deadlines and double acknowledgements, message
limits, unknown routes, resumable sessions, which shard gets which guild's events) and simple
everywhere else (no rate limits, no permission overwrites, no MESSAGE_CREATE events for the bot's
own messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yarl
from aiohttp import web

from .gateway import CLOSE_UNKNOWN_ERROR, FakeGateway, GatewayConnection, SentEvent, shard_for
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL,
    MODAL_SUBMIT,
    InteractionHandle,
    build_command_data,
    build_modal_components,
)
from .models import (
    ATTACH_FILES,
    EMBED_LINKS,
    JSON,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    USE_EXTERNAL_EMOJIS,
    VIEW_CHANNEL,
    FakeAttachment,
    FakeGuild,
    FakeMember,
    FakeMessage,
    FakeUser,
    RecordedRequest,
    SnowflakeGenerator,
    Upload,
)
from .rest import API_PREFIX, RestApi

if TYPE_CHECKING:
    import discord

log = logging.getLogger("fake_discord")

#: The bot's permissions in a channel when the test does not say otherwise.
DEFAULT_APP_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY | USE_EXTERNAL_EMOJIS
)


class _Default:
    """Sentinel for "the first configured guild" (``None`` already means "a DM")."""

    def __repr__(self) -> str:
        return "DEFAULT_GUILD"


DEFAULT_GUILD: Any = _Default()
#: A guild id, a ``FakeGuild``, ``None`` for a DM, or ``DEFAULT_GUILD`` for the first configured one.
GuildRef = Union[int, FakeGuild, None]
#: A permission bitfield as an int or a ``discord.Permissions``.
PermissionValue = Union[int, "discord.Permissions"]


class WaitTimeout(AssertionError):
    """A ``wait_until`` ran out of time: the bot did not do what the test expected."""


class DiscordPatch:
    """Swaps discord.py's REST base and default gateway for the fake's, and back."""

    def __init__(self, rest_base: str, gateway_url: str) -> None:
        self._rest_base, self._gateway_url = rest_base, gateway_url
        self._saved: Optional[Tuple[str, yarl.URL]] = None

    def __enter__(self) -> "DiscordPatch":
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = self._rest_base  # type: ignore[misc]
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._gateway_url)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        assert self._saved is not None
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved  # type: ignore[misc]
        self._saved = None

    async def __aenter__(self) -> "DiscordPatch":
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)


@dataclass
class SyncCall:
    """One bulk overwrite of application commands (``PUT .../commands``)."""

    guild_id: Optional[int]
    commands: List[JSON]
    at: float


class FakeDiscord:
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
        self.guilds: List[FakeGuild] = list(guilds)
        self.users: Dict[int, FakeUser] = {}
        for user in (self.bot_user, self.owner, self.default_user):
            self.users[user.id] = user
        for guild in self.guilds:
            self._register_guild_users(guild)

        self.snowflake = SnowflakeGenerator()
        #: Every API request, in arrival order.
        self.requests: List[RecordedRequest] = []
        #: Requests to routes the fake does not model (each also answered 404).
        self.unknown_routes: List[RecordedRequest] = []
        #: Crashes inside the fake itself (each also answered 400): a bug in the fake or a garbled request.
        self.errors: List[str] = []
        self.messages: Dict[int, FakeMessage] = {}
        self.attachments: Dict[int, FakeAttachment] = {}
        self.interactions: Dict[int, InteractionHandle] = {}
        self._interactions_by_token: Dict[str, InteractionHandle] = {}
        self._commands: Dict[Optional[int], List[JSON]] = {}
        self.sync_calls: List[SyncCall] = []
        self._dm_channels: Dict[int, int] = {}

        self.gateway = FakeGateway(self, heartbeat_interval=heartbeat_interval, ack_heartbeats=ack_heartbeats)
        self.rest = RestApi(self)
        self._runner: Optional[web.AppRunner] = None
        self._wanted_port = port  # 0: any free port
        self.port: Optional[int] = None
        self._changed = asyncio.Event()

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

    # -- waiting ------------------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every ``wait_until``: something changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5.0,
        what: str = "a condition",
        *,
        poll: Optional[float] = 0.05,
    ) -> Any:
        """Wait until ``predicate()`` is truthy and return its value.

        Re-checked whenever the fake's state changes, and also every ``poll`` seconds so that
        predicates on the bot's own state (``lambda: bot.get_guild(1)``) work. Waits that only
        look at the fake pass ``poll=None``: with hundreds of concurrent waiters (a benchmark
        sharing the bot's event loop) polling would add to the latency being measured.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeout(f"timed out after {timeout}s waiting for {what}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining if poll is None else min(remaining, poll))

    async def wait_for_ready(self, count: int = 1, timeout: float = 10.0, *, shard_id: Optional[int] = None) -> None:
        """Wait until the bot has identified ``count`` times in total and the connection is live.

        "Ready" here means READY and every GUILD_CREATE were sent: from then on an injected
        interaction reaches a client that knows its guilds. (discord.py's own ``on_ready`` fires
        ``guild_ready_timeout`` seconds later; set that option small in tests that wait for it.)
        With several shards, ``count`` adds up every shard's READYs and all of them must be live;
        ``shard_id`` waits for that one shard alone (its ``count``-th READY, its session live).
        """
        if shard_id is None:
            await self.wait_until(
                lambda: self.gateway.ready_count >= count and self.gateway.live, timeout, f"READY #{count}", poll=None
            )
            return

        def shard_ready() -> bool:
            readies = sum(1 for c in self.gateway.connections if c.ready and c.shard and c.shard[0] == shard_id)
            session = self.gateway.sessions.get(shard_id)
            return readies >= count and session is not None and session.live

        await self.wait_until(shard_ready, timeout, f"READY #{count} of shard {shard_id}", poll=None)

    async def wait_for_resume(self, count: int = 1, timeout: float = 10.0) -> GatewayConnection:
        """Wait until ``count`` successful RESUMEs happened and the connection is live again."""
        await self.wait_until(
            lambda: self.gateway.count("resume", resumed=True) >= count and self.gateway.live,
            timeout,
            f"RESUME #{count}",
            poll=None,
        )
        assert self.gateway.current is not None
        return self.gateway.current

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

    # -- injecting interactions -----------------------------------------------------------------------

    async def slash(
        self,
        command: str,
        options: Optional[Mapping[str, Any]] = None,
        *,
        guild: GuildRef = DEFAULT_GUILD,
        user: Optional[FakeUser] = None,
        permissions: Optional[PermissionValue] = None,
        channel_id: Optional[int] = None,
        locale: str = "en-US",
        resolved: Optional[JSON] = None,
    ) -> InteractionHandle:
        """A user runs a slash command; ``command`` may name a subcommand (``"names list"``).

        ``guild`` defaults to the first configured guild; ``guild=None`` makes it a DM. The
        member's ``permissions`` default to what their roles give them (owner: everything);
        pass an int or a ``discord.Permissions`` to override. Option types come from the
        synced command when there is one. Returns at once; ``await handle.response()`` waits.
        """
        return await self._command_interaction(
            APPLICATION_COMMAND,
            command,
            options,
            guild=guild,
            user=user,
            permissions=permissions,
            channel_id=channel_id,
            locale=locale,
            resolved=resolved,
        )

    async def autocomplete(
        self,
        command: str,
        options: Mapping[str, Any],
        focused: str,
        *,
        guild: GuildRef = DEFAULT_GUILD,
        user: Optional[FakeUser] = None,
        permissions: Optional[PermissionValue] = None,
    ) -> InteractionHandle:
        """A user is typing option ``focused``; the response ``data["choices"]`` are the suggestions."""
        return await self._command_interaction(
            AUTOCOMPLETE, command, options, guild=guild, user=user, permissions=permissions, focused=focused
        )

    async def click(
        self,
        message: Union[FakeMessage, int],
        custom_id: Optional[str] = None,
        *,
        label: Optional[str] = None,
        values: Sequence[str] = (),
        resolved: Optional[JSON] = None,
        user: Optional[FakeUser] = None,
        permissions: Optional[PermissionValue] = None,
        component_type: Optional[int] = None,
    ) -> InteractionHandle:
        """A user clicks a button (or picks ``values`` in a select) on ``message``.

        The component is found by ``custom_id`` or by (part of) its ``label``; a missing or
        disabled component raises, since no user could click it. To click a component the
        message no longer shows (a stale client), pass ``custom_id`` and ``component_type``.
        User, role, channel and mentionable selects (types 5-8) also need ``resolved``, as
        Discord sends the picked objects there; string selects (type 3) use ``values`` alone.
        """
        target = self.messages[message] if isinstance(message, int) else message
        component = target.find_component(custom_id, label=label)
        if component is None:
            if custom_id is None or component_type is None:
                raise LookupError(
                    f"no component {custom_id or label!r} on message {target.id}; it has {target.custom_ids()}"
                )
        else:
            if component.get("disabled"):
                raise ValueError(f"component {component['custom_id']!r} is disabled; a user cannot click it")
            custom_id, component_type = component["custom_id"], component["type"]
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if component_type != 2:
            data["values"] = list(values)
        if resolved is not None:
            data["resolved"] = resolved
        guild = self.guild(target.guild_id) if target.guild_id is not None else None
        return await self._inject(
            MESSAGE_COMPONENT,
            data,
            guild=guild,
            user=user,
            permissions=permissions,
            channel_id=target.channel_id,
            source_message=target,
        )

    async def submit_modal(
        self,
        handle: InteractionHandle,
        values: Mapping[str, Any],
        *,
        user: Optional[FakeUser] = None,
    ) -> InteractionHandle:
        """The user fills in and submits the modal the bot opened in answer to ``handle``.

        ``values`` maps each input's ``custom_id`` to its text (or a list for selects).
        """
        if handle.response_type != MODAL:
            raise ValueError(f"interaction {handle.id} was not answered with a modal (got {handle.response_type})")
        modal = handle.data
        data = {"custom_id": modal["custom_id"], "components": build_modal_components(modal, values)}
        return await self._inject(
            MODAL_SUBMIT,
            data,
            guild=handle.guild,
            user=user or handle.user,
            permissions=None,
            channel_id=handle.channel_id,
            source_message=handle.source_message,
        )

    async def _command_interaction(
        self,
        interaction_type: int,
        command: str,
        options: Optional[Mapping[str, Any]],
        *,
        guild: GuildRef,
        user: Optional[FakeUser],
        permissions: Optional[PermissionValue],
        channel_id: Optional[int] = None,
        locale: str = "en-US",
        resolved: Optional[JSON] = None,
        focused: Optional[str] = None,
    ) -> InteractionHandle:
        target_guild = self._resolve_guild(guild)
        name = command.split()[0]
        definition, scope = self.find_command(name, target_guild.id if target_guild else None)
        if definition is None:
            log.debug("injecting /%s, which the bot never synced", name)
        data = build_command_data(
            command,
            options,
            definition=definition,
            command_id=int(definition["id"]) if definition else self.snowflake(),
            command_guild_id=scope,
            focused=focused,
            resolved=resolved,
        )
        return await self._inject(
            interaction_type,
            data,
            guild=target_guild,
            user=user,
            permissions=permissions,
            channel_id=channel_id,
            locale=locale,
        )

    async def _inject(
        self,
        interaction_type: int,
        data: JSON,
        *,
        guild: Optional[FakeGuild],
        user: Optional[FakeUser],
        permissions: Optional[PermissionValue],
        channel_id: Optional[int],
        locale: str = "en-US",
        source_message: Optional[FakeMessage] = None,
    ) -> InteractionHandle:
        user = user or self.default_user
        self.users.setdefault(user.id, user)
        interaction_id = self.snowflake()
        token = f"fake-{interaction_id}-{secrets.token_urlsafe(24)}"
        payload: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "attachment_size_limit": self.attachment_size_limit,
            "app_permissions": str(self.app_permissions),
            "entitlements": [],
        }
        if guild is not None:
            channel = guild.channel(channel_id) if channel_id is not None else guild.text_channel
            if channel is None:
                raise ValueError(f"guild {guild.id} has no channel {channel_id}")
            if permissions is None:
                permissions = guild.permissions_for(user.id)
            member = guild.member(user.id) or FakeMember(user=user)
            payload.update(
                guild_id=str(guild.id),
                guild={"id": str(guild.id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                channel_id=str(channel.id),
                channel=channel.to_payload(guild.id),
                member=member.to_payload(int(getattr(permissions, "value", permissions))),
                authorizing_integration_owners={"0": str(guild.id)},
                context=0,
            )
            channel_id = channel.id
        else:
            dm = self._dm_channel_payload(user)
            payload.update(
                channel_id=dm["id"], channel=dm, user=user.to_payload(), authorizing_integration_owners={}, context=1
            )
            channel_id = int(dm["id"])
        if source_message is not None:
            # Component interactions, and modals opened from a component, carry their message.
            payload["message"] = source_message.to_payload()

        handle = InteractionHandle(
            fake=self,
            id=interaction_id,
            token=token,
            type=interaction_type,
            payload=payload,
            user=user,
            guild=guild,
            channel_id=channel_id,
            source_message=source_message,
        )
        # Registered before sending: the bot may call back before dispatch() returns.
        self.interactions[interaction_id] = handle
        self._interactions_by_token[token] = handle
        handle.event = await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return handle

    # -- reading state ----------------------------------------------------------------------------

    def guild(self, guild_id: Optional[int]) -> Optional[FakeGuild]:
        return next((guild for guild in self.guilds if guild.id == guild_id), None)

    def _resolve_guild(self, guild: GuildRef) -> Optional[FakeGuild]:
        if guild is DEFAULT_GUILD:
            if not self.guilds:
                raise ValueError("no guilds configured: pass guild=None for a DM")
            return self.guilds[0]
        if guild is None or isinstance(guild, FakeGuild):
            return guild
        found = self.guild(int(guild))
        if found is None:
            raise ValueError(f"unknown guild {guild}")
        return found

    def commands(self, guild_id: Optional[int] = None) -> List[JSON]:
        """The commands last synced globally (``guild_id=None``) or to one guild."""
        return list(self._commands.get(guild_id, []))

    def find_command(self, name: str, guild_id: Optional[int] = None) -> Tuple[Optional[JSON], Optional[int]]:
        """The synced slash command ``name`` a user in ``guild_id`` would see, and its guild scope.

        Guild commands win over global ones, as in the Discord client.
        """
        scopes: List[Optional[int]] = [guild_id, None] if guild_id is not None else [None]
        for scope in scopes:
            for command in self._commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command, scope
        return None, None

    def sync_count(self, guild_id: Any = "any") -> int:
        """How many times commands were bulk-synced (globally: ``guild_id=None``; anywhere: default)."""
        return sum(1 for call in self.sync_calls if guild_id == "any" or call.guild_id == guild_id)

    def dm_channel_id(self, user: FakeUser) -> int:
        """The id of the DM channel between the bot and ``user`` (created on first use)."""
        return int(self._dm_channel_payload(user)["id"])

    def channel_messages(self, channel_id: int, *, include_deleted: bool = False) -> List[FakeMessage]:
        """Messages in a channel (interaction replies included), oldest first."""
        return [m for m in self.messages.values() if m.channel_id == channel_id and (include_deleted or not m.deleted)]

    def latencies(self) -> List[float]:
        """INTERACTION_CREATE → callback seconds for every answered interaction, in injection order."""
        return [h.latency for h in self.interactions.values() if h.latency is not None]

    @property
    def api_errors(self) -> List[RecordedRequest]:
        """Requests the fake answered with 4xx (the bot did something Discord would refuse)."""
        return [r for r in self.requests if r.status >= 400]

    def assert_clean(self, *, allow_api_errors: bool = False) -> None:
        """Fail if anything surprising happened: unknown routes, crashes in the fake, unexpected
        gateway frames, late interactions, and (unless allowed) requests Discord would refuse."""
        problems: List[str] = []
        problems += [f"unknown route: {r.method} {r.path}" for r in self.unknown_routes]
        problems += [f"fake discord error: {e}" for e in self.errors]
        problems += [f"unexpected gateway frame: {f!r}" for f in self.gateway.unexpected_frames]
        problems += [
            f"late answer to interaction {h.id} ({h.latency:.2f}s)" for h in self.interactions.values() if h.late
        ]
        if not allow_api_errors:
            problems += [
                f"refused: {r.method} {r.path} -> {r.status}: {r.json!r}"
                for r in self.api_errors
                if r not in self.unknown_routes
            ]
        if problems:
            raise AssertionError("fake discord saw problems:\n  " + "\n  ".join(problems))

    # -- internals shared with the REST and gateway halves ---------------------------------------------

    def _register_guild_users(self, guild: FakeGuild) -> None:
        for member in guild.members:
            self.users.setdefault(member.user.id, member.user)

    def _own_members(self, guild: FakeGuild) -> List[FakeMember]:
        """The bot's own membership, added to every guild it is in unless the test listed it."""
        return [] if guild.member(self.bot_user.id) else [FakeMember(user=self.bot_user)]

    def _bot_user_payload(self) -> JSON:
        return {**self.bot_user.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"}

    def _application_payload(self) -> JSON:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "A fake application served by tests.fake_discord",
            "summary": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.owner.to_payload(),
            "team": None,
            "flags": 0,
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "bot": self.bot_user.to_payload(),
            "approximate_guild_count": len(self.guilds),
        }

    def _shard_guilds(self, shard: Sequence[int]) -> List[FakeGuild]:
        """The guilds whose events go to shard ``[id, count]``."""
        shard_id, shard_count = shard
        return [guild for guild in self.guilds if shard_for(guild.id, shard_count) == shard_id]

    def _ready_payload(self, session_id: str, *, shard: List[int]) -> JSON:
        return {
            "v": 10,
            "user": self._bot_user_payload(),
            "guilds": [{"id": str(guild.id), "unavailable": True} for guild in self._shard_guilds(shard)],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "shard": list(shard),
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
        }

    def _guild_create_payloads(self, shard: Sequence[int] = (0, 1)) -> List[JSON]:
        return [guild.to_payload(self._own_members(guild)) for guild in self._shard_guilds(shard)]

    def _dm_channel_payload(self, user: FakeUser) -> JSON:
        """The DM channel between the bot and ``user`` (one per user, created on first use)."""
        channel_id = self._dm_channels.setdefault(user.id, self.snowflake())
        return {
            "id": str(channel_id),
            "type": 1,
            "recipients": [user.to_payload()],
            "last_message_id": None,
            "flags": 0,
        }

    def _channel_payload(self, channel_id: int) -> Optional[JSON]:
        for guild in self.guilds:
            channel = guild.channel(channel_id)
            if channel is not None:
                return channel.to_payload(guild.id)
        for user_id, dm_id in self._dm_channels.items():
            if dm_id == channel_id:
                return self._dm_channel_payload(self.users[user_id])
        return None

    def _make_attachment(self, upload: Upload, description: Optional[str]) -> FakeAttachment:
        attachment_id = self.snowflake()
        attachment = FakeAttachment(
            id=attachment_id,
            filename=upload.filename,
            data=upload.data,
            url=f"{self.base_url}/attachments/{attachment_id}/{upload.filename}",
            content_type=upload.content_type,
            description=description,
        )
        self.attachments[attachment_id] = attachment
        return attachment

    def _new_message(
        self, channel_id: int, guild_id: Optional[int], payload: JSON, uploads: Sequence[Upload], **fields: Any
    ) -> FakeMessage:
        message = FakeMessage(
            id=self.snowflake(), channel_id=channel_id, guild_id=guild_id, author=self.bot_user.to_payload(), **fields
        )
        message.apply(payload, uploads, self._make_attachment, edit=False)
        self.messages[message.id] = message
        return message

    def _create_message(
        self, handle: InteractionHandle, payload: JSON, uploads: Sequence[Upload], *, message_type: int
    ) -> FakeMessage:
        """A message created through an interaction (reply or followup): sent by the app's webhook."""
        assert handle.channel_id is not None
        return self._new_message(
            handle.channel_id,
            handle.guild.id if handle.guild else None,
            payload,
            uploads,
            type=message_type,
            webhook_id=self.application_id,
            application_id=self.application_id,
            interaction_metadata=handle._interaction_metadata(),
        )

    def _create_channel_message(self, channel: JSON, payload: JSON, uploads: Sequence[Upload]) -> FakeMessage:
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        return self._new_message(int(channel["id"]), guild_id, payload, uploads)

    def _store_commands(self, scope: Optional[int], commands: Sequence[JSON]) -> List[JSON]:
        """Replace a scope's commands, keeping ids stable by (name, type) as Discord does."""
        previous = {(c["name"], c.get("type", 1)): c["id"] for c in self._commands.get(scope, [])}
        stored: List[JSON] = []
        for command in commands:
            kind = command.get("type", 1)
            entry = {
                "default_member_permissions": None,
                "nsfw": False,
                "options": [],
                "description": "",
                **command,
                "id": previous.get((command["name"], kind)) or str(self.snowflake()),
                "application_id": str(self.application_id),
                "type": kind,
                "version": str(self.snowflake()),
            }
            if scope is not None:
                entry["guild_id"] = str(scope)
            stored.append(entry)
        self._commands[scope] = stored
        return stored

    def _record_sync(self, scope: Optional[int], commands: List[JSON]) -> None:
        self.sync_calls.append(SyncCall(guild_id=scope, commands=commands, at=time.perf_counter()))
