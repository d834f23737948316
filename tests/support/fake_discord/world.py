"""Where the bot is: its guilds, the users it knows, its DM channels, and which shard sees which guild.

Apart from the server because the REST routes, the gateway's READY burst and injected
interactions all ask the same questions of it (which guild, which channel, which DM, who is
the bot in this guild) and must get the same answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from .gateway import shard_for
from .guilds import FakeGuild, FakeMember, FakeUser
from .jsontypes import JSON
from .payloads import dm_channel_payload, ready_payload
from .snowflakes import SnowflakeGenerator

if TYPE_CHECKING:
    import discord


class _Default:
    """Sentinel for "the first configured guild" (``None`` already means "a DM")."""

    def __repr__(self) -> str:
        return "DEFAULT_GUILD"


DEFAULT_GUILD: Any = _Default()
#: A guild id, a ``FakeGuild``, ``None`` for a DM, or ``DEFAULT_GUILD`` for the first configured one.
GuildRef = Union[int, FakeGuild, None]
#: A permission bitfield as an int or a ``discord.Permissions``.
PermissionValue = Union[int, "discord.Permissions"]


class World:
    """``FakeDiscord``'s guilds, users and DM channels (a mixin: the facade provides the bot's identity)."""

    snowflake: SnowflakeGenerator
    application_id: int
    bot_user: FakeUser
    resume_gateway_url: str

    def _init_world(self, guilds: Sequence[FakeGuild], users: Sequence[FakeUser]) -> None:
        self.guilds: List[FakeGuild] = list(guilds)
        self.users: Dict[int, FakeUser] = {}
        for user in users:
            self.users[user.id] = user
        for guild in self.guilds:
            self._register_guild_users(guild)
        self._dm_channels: Dict[int, int] = {}

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

    def _register_guild_users(self, guild: FakeGuild) -> None:
        for member in guild.members:
            self.users.setdefault(member.user.id, member.user)

    def _own_members(self, guild: FakeGuild) -> List[FakeMember]:
        """The bot's own membership, added to every guild it is in unless the test listed it."""
        return [] if guild.member(self.bot_user.id) else [FakeMember(user=self.bot_user)]

    # -- shards ---------------------------------------------------------------------------------

    def _shard_guilds(self, shard: Sequence[int]) -> List[FakeGuild]:
        """The guilds whose events go to shard ``[id, count]``."""
        shard_id, shard_count = shard
        return [guild for guild in self.guilds if shard_for(guild.id, shard_count) == shard_id]

    def _ready_payload(self, session_id: str, *, shard: List[int]) -> JSON:
        return ready_payload(
            session_id,
            shard=shard,
            bot_user=self.bot_user,
            application_id=self.application_id,
            guilds=self._shard_guilds(shard),
            resume_gateway_url=self.resume_gateway_url,
        )

    def _guild_create_payloads(self, shard: Sequence[int] = (0, 1)) -> List[JSON]:
        return [guild.to_payload(self._own_members(guild)) for guild in self._shard_guilds(shard)]

    # -- channels -------------------------------------------------------------------------------

    def dm_channel_id(self, user: FakeUser) -> int:
        """The id of the DM channel between the bot and ``user`` (created on first use)."""
        return int(self._dm_channel_payload(user)["id"])

    def _dm_channel_payload(self, user: FakeUser) -> JSON:
        """The DM channel between the bot and ``user`` (one per user, created on first use)."""
        return dm_channel_payload(self._dm_channels.setdefault(user.id, self.snowflake()), user)

    def _channel_payload(self, channel_id: int) -> Optional[JSON]:
        for guild in self.guilds:
            channel = guild.channel(channel_id)
            if channel is not None:
                return channel.to_payload(guild.id)
        for user_id, dm_id in self._dm_channels.items():
            if dm_id == channel_id:
                return self._dm_channel_payload(self.users[user_id])
        return None
