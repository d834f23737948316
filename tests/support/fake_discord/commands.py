"""The application commands the bot synced, stored the way Discord keeps them, and the record of syncs.

Apart from the REST routes that change them (``rest.commands``) because injected slash commands
read them too: an option's type comes from the synced definition, and guild commands win over
global ones, as in the Discord client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .jsontypes import JSON
from .snowflakes import SnowflakeGenerator


@dataclass
class SyncCall:
    """One bulk overwrite of application commands (``PUT .../commands``)."""

    guild_id: Optional[int]
    commands: List[JSON]
    at: float


class CommandRegistry:
    """``FakeDiscord``'s commands (a mixin: the facade provides ``snowflake`` and ``application_id``)."""

    snowflake: SnowflakeGenerator
    application_id: int

    def _init_commands(self) -> None:
        self._commands: Dict[Optional[int], List[JSON]] = {}
        self.sync_calls: List[SyncCall] = []

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
