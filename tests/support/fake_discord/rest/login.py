"""Routes discord.py calls to log in and to find users: the gateway URL, ``@me``, the application, DMs.

Grouped because they are about who the bot is and whom it talks to, not about any one guild or
message; they read the fake's identity (token, bot user, owner, recommended shards).
"""

from __future__ import annotations

from typing import List

from aiohttp import web

from ..payloads import application_payload, bot_user_payload, gateway_bot_payload
from .errors import UNKNOWN_USER, unknown
from .plumbing import RECORD, Route, RouteGroup, json_response


class LoginRoutes(RouteGroup):
    """``/gateway``, ``/users``, ``/applications/@me``."""

    def routes(self) -> List[Route]:
        return [
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/users/@me", self.get_me),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
        ]

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(gateway_bot_payload(self.fake.gateway_url, self.fake.recommended_shards))

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(bot_user_payload(self.fake.bot_user))

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise unknown("User", UNKNOWN_USER)
        return json_response(user.to_payload())

    async def get_application(self, request: web.Request) -> web.Response:
        fake = self.fake
        return json_response(application_payload(fake.application_id, fake.bot_user, fake.owner, len(fake.guilds)))

    async def create_dm(self, request: web.Request) -> web.Response:
        body = request[RECORD].json or {}
        user = self.fake.users.get(int(body.get("recipient_id", 0)))
        if user is None:
            raise unknown("User", UNKNOWN_USER)
        return json_response(self.fake._dm_channel_payload(user))
