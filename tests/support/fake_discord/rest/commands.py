"""Application command routes, global and per guild: what the bot syncs and how Discord stores it.

Grouped because syncing is its own conversation (bulk overwrite, upsert, edit, delete) with its own
rules: only the fake's application may sync, only to guilds the bot is in, and definitions are
checked for the mistakes discord.py lets through. The stored commands live on the fake
(``commands`` module), where injected slash commands find their option types.
"""

from __future__ import annotations

from typing import List, Optional

from aiohttp import web

from ..jsontypes import JSON
from .errors import UNKNOWN_COMMAND, form_error, missing_access, unknown
from .limits import validate_command
from .plumbing import RECORD, Route, RouteGroup, json_response, no_content

APP = "/applications/{app_id}"


class CommandRoutes(RouteGroup):
    """``/applications/{app_id}[/guilds/{guild_id}]/commands[/{command_id}]``."""

    def routes(self) -> List[Route]:
        table: List[Route] = []
        for scope in (APP, APP + "/guilds/{guild_id}"):
            table += [
                ("GET", scope + "/commands", self.list_commands),
                ("PUT", scope + "/commands", self.bulk_overwrite_commands),
                ("POST", scope + "/commands", self.upsert_command),
                ("GET", scope + "/commands/{command_id}", self.get_command),
                ("PATCH", scope + "/commands/{command_id}", self.edit_command),
                ("DELETE", scope + "/commands/{command_id}", self.delete_command),
            ]
        return table

    def _scope(self, request: web.Request) -> Optional[int]:
        if int(request.match_info["app_id"]) != self.fake.application_id:
            raise missing_access()
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if self.fake.guild(int(guild_id)) is None:
            raise missing_access()
        return int(guild_id)

    def _find_command(self, scope: Optional[int], command_id: str) -> JSON:
        for command in self.fake._commands.get(scope, []):
            if command["id"] == command_id:
                return command
        raise unknown("application command", UNKNOWN_COMMAND)

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self.fake._commands.get(self._scope(request), []))

    async def bulk_overwrite_commands(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body = request[RECORD].json
        if not isinstance(body, list):
            raise form_error([("_root", "Expected a list of commands.")])
        problems = [problem for index, command in enumerate(body) for problem in validate_command(command, index)]
        if problems:
            raise form_error(problems)
        stored = self.fake._store_commands(scope, body)
        self.fake._record_sync(scope, body)
        return json_response(stored)

    async def upsert_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body = request[RECORD].json or {}
        problems = validate_command(body, 0)
        if problems:
            raise form_error(problems)
        existing = self.fake._commands.get(scope, [])
        others = [c for c in existing if (c["name"], c.get("type", 1)) != (body.get("name"), body.get("type", 1))]
        is_new = len(others) == len(existing)
        stored = self.fake._store_commands(scope, [*others, body])
        command = next(c for c in stored if c["name"] == body.get("name") and c.get("type", 1) == body.get("type", 1))
        return json_response(command, 201 if is_new else 200)

    async def get_command(self, request: web.Request) -> web.Response:
        return json_response(self._find_command(self._scope(request), request.match_info["command_id"]))

    async def edit_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        command = self._find_command(scope, request.match_info["command_id"])
        command.update({k: v for k, v in (request[RECORD].json or {}).items() if k not in ("id", "application_id")})
        return json_response(command)

    async def delete_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        command = self._find_command(scope, request.match_info["command_id"])
        self.fake._commands[scope].remove(command)
        return no_content()
