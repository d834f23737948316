"""What users do, injected: slash commands, autocomplete, button clicks and select picks, modal submissions.

Apart from the server because this is the test-facing half of the fake: each method builds the
interaction Discord would send for a user's action, registers a handle for the bot's answers
(before sending, since the bot may answer at once) and dispatches INTERACTION_CREATE to the
shard that carries the guild.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Union

from .commands import CommandRegistry
from .guilds import FakeChannel, FakeGuild, FakeUser
from .interaction_data import build_click_data, build_command_data, build_modal_components
from .interactions import APPLICATION_COMMAND, AUTOCOMPLETE, MESSAGE_COMPONENT, MODAL, MODAL_SUBMIT, InteractionHandle
from .jsontypes import JSON
from .messages import FakeMessage
from .payloads import dm_interaction_fields, guild_interaction_fields, interaction_payload
from .world import DEFAULT_GUILD, GuildRef, PermissionValue, World

if TYPE_CHECKING:
    from .gateway import FakeGateway

log = logging.getLogger("fake_discord")


class Injecting(World, CommandRegistry):
    """``FakeDiscord``'s user actions (a mixin: the facade provides its settings and ``gateway``)."""

    gateway: "FakeGateway"
    default_user: FakeUser
    attachment_size_limit: int
    app_permissions: int
    messages: Dict[int, FakeMessage]

    def _init_interactions(self) -> None:
        self.interactions: Dict[int, InteractionHandle] = {}
        self._interactions_by_token: Dict[str, InteractionHandle] = {}

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
            APPLICATION_COMMAND, command, options, guild=guild, user=user, permissions=permissions,
            channel_id=channel_id, locale=locale, resolved=resolved
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
        data = build_click_data(
            target, custom_id, label=label, values=values, resolved=resolved, component_type=component_type
        )
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
            interaction_type, data, guild=target_guild, user=user, permissions=permissions,
            channel_id=channel_id, locale=locale
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
        payload = interaction_payload(
            interaction_id,
            token,
            interaction_type,
            data,
            application_id=self.application_id,
            locale=locale,
            attachment_size_limit=self.attachment_size_limit,
            app_permissions=self.app_permissions,
        )
        if guild is not None:
            channel = _interaction_channel(guild, channel_id)
            payload.update(guild_interaction_fields(guild, channel, user, permissions))
            channel_id = channel.id
        else:
            dm = self._dm_channel_payload(user)
            payload.update(dm_interaction_fields(dm, user))
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
        return await self._send(handle)

    async def _send(self, handle: InteractionHandle) -> InteractionHandle:
        # Registered before sending: the bot may call back before dispatch() returns.
        self.interactions[handle.id] = handle
        self._interactions_by_token[handle.token] = handle
        handle.event = await self.gateway.dispatch("INTERACTION_CREATE", handle.payload)
        return handle


def _interaction_channel(guild: FakeGuild, channel_id: Optional[int]) -> FakeChannel:
    """Where in ``guild`` the interaction happens: ``channel_id``, or the first text channel."""
    channel = guild.channel(channel_id) if channel_id is not None else guild.text_channel
    if channel is None:
        raise ValueError(f"guild {guild.id} has no channel {channel_id}")
    return channel
