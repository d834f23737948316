"""Guild routes: the guild, its channels, roles and members, as the bot fetches them.

Grouped because they only read the configured :class:`~tests.support.fake_discord.FakeGuild`
objects (the bot's own membership added, as on Discord); nothing here changes state.
"""

from __future__ import annotations

from typing import List

from aiohttp import web

from ..guilds import FakeGuild
from .errors import UNKNOWN_GUILD, UNKNOWN_MEMBER, unknown
from .plumbing import Route, RouteGroup, json_response

GUILD = "/guilds/{guild_id}"
#: GUILD_CREATE keys that ``GET /guilds/{id}`` does not return.
GATEWAY_ONLY_KEYS = ("channels", "members", "threads", "voice_states", "presences", "joined_at", "large", "unavailable")


class GuildRoutes(RouteGroup):
    """``/guilds/{guild_id}[/channels|/roles|/members/{user_id}]``."""

    def routes(self) -> List[Route]:
        return [
            ("GET", GUILD, self.get_guild),
            ("GET", GUILD + "/channels", self.get_guild_channels),
            ("GET", GUILD + "/roles", self.get_guild_roles),
            ("GET", GUILD + "/members/{user_id}", self.get_member),
        ]

    def _guild(self, request: web.Request) -> FakeGuild:
        guild = self.fake.guild(int(request.match_info["guild_id"]))
        if guild is None:
            raise unknown("Guild", UNKNOWN_GUILD)
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        payload = guild.to_payload(self.fake._own_members(guild))
        for key in GATEWAY_ONLY_KEYS:
            payload.pop(key, None)
        return json_response(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([channel.to_payload(guild.id) for channel in guild.channels])

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        return json_response([role.to_payload() for role in self._guild(request).roles])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        user_id = int(request.match_info["user_id"])
        member = next((m for m in [*guild.members, *self.fake._own_members(guild)] if m.user.id == user_id), None)
        if member is None:
            raise unknown("Member", UNKNOWN_MEMBER)
        return json_response(member.to_payload())
