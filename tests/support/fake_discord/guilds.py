"""Who and where: users, roles, channels, members and the guilds that hold them.

These are the fake's state for the servers the bot is in; each renders itself (``to_payload``) in
the JSON shape of Discord's API v10, because the real discord.py client parses these payloads and a
missing key is a ``KeyError`` deep inside discord.py: the required keys are listed once, next to the
object they describe. Messages live in ``messages``; payloads assembled from several objects and
the fake's settings (READY, INTERACTION_CREATE, ...) in ``payloads``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from .jsontypes import JSON
from .permissions import ADMINISTRATOR, ALL_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS


@dataclass
class FakeUser:
    """A Discord user (a person or a bot)."""

    id: int
    username: str
    bot: bool = False
    global_name: Optional[str] = None

    def to_payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class FakeRole:
    """A guild role; ``permissions`` is the integer bitfield."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0

    def to_payload(self) -> JSON:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


@dataclass
class FakeChannel:
    """A guild channel; type 0 is a text channel."""

    id: int
    name: str = "general"
    type: int = 0
    position: int = 0

    def to_payload(self, guild_id: int) -> JSON:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }


@dataclass
class FakeMember:
    """A user's membership in one guild: which roles they hold there."""

    user: FakeUser
    roles: List[int] = field(default_factory=list)
    nick: Optional[str] = None

    def to_payload(self, permissions: Optional[int] = None) -> JSON:
        """The member object; ``permissions`` is only present inside interactions, as on Discord."""
        payload: JSON = {
            "user": self.user.to_payload(),
            "roles": [str(role_id) for role_id in self.roles],
            "nick": self.nick,
            "avatar": None,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            payload["permissions"] = str(permissions)
        return payload


@dataclass
class FakeGuild:
    """A server the bot is in.

    Defaults keep test set-up short and ids predictable: the ``@everyone`` role has the guild's
    id (as on Discord), a text channel ``#general`` gets ``id + 1`` when no channel is given, and
    the owner is a separate user with id ``id + 2`` unless ``owner_id`` is given. The bot's own
    member is added by the fake when the guild is sent over the gateway.
    """

    id: int
    name: str = "Test Server"
    owner_id: Optional[int] = None
    everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS
    roles: List[FakeRole] = field(default_factory=list)
    channels: List[FakeChannel] = field(default_factory=list)
    members: List[FakeMember] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.owner_id is None:
            self.owner_id = self.id + 2
        if not any(role.id == self.id for role in self.roles):
            self.roles.insert(0, FakeRole(id=self.id, name="@everyone", permissions=self.everyone_permissions))
        if not self.channels:
            self.channels.append(FakeChannel(id=self.id + 1, name="general"))

    @property
    def text_channel(self) -> FakeChannel:
        """The first text channel: where injected interactions happen unless told otherwise."""
        return next(channel for channel in self.channels if channel.type == 0)

    def channel(self, channel_id: int) -> Optional[FakeChannel]:
        return next((channel for channel in self.channels if channel.id == channel_id), None)

    def role(self, role_id: int) -> Optional[FakeRole]:
        return next((role for role in self.roles if role.id == role_id), None)

    def member(self, user_id: int) -> Optional[FakeMember]:
        return next((member for member in self.members if member.user.id == user_id), None)

    def add_member(self, user: FakeUser, roles: Sequence[int] = ()) -> FakeMember:
        """Add ``user`` (or update their roles) and return the membership."""
        member = self.member(user.id)
        if member is None:
            member = FakeMember(user=user, roles=list(roles))
            self.members.append(member)
        else:
            member.roles = list(roles)
        return member

    def add_role(self, role_id: int, name: str, permissions: int = 0) -> FakeRole:
        role = FakeRole(id=role_id, name=name, permissions=permissions, position=len(self.roles))
        self.roles.append(role)
        return role

    def permissions_for(self, user_id: int) -> int:
        """Guild-level permissions the way Discord computes them (no channel overwrites).

        The owner and administrators get everything; everyone else gets ``@everyone`` plus
        the union of their roles.
        """
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        everyone = self.role(self.id)
        value = everyone.permissions if everyone is not None else 0
        member = self.member(user_id)
        for role_id in member.roles if member else ():
            role = self.role(role_id)
            if role is not None:
                value |= role.permissions
        if value & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return value

    def to_payload(self, extra_members: Sequence[FakeMember] = ()) -> JSON:
        """The GUILD_CREATE payload. ``member_count`` equals the members sent, so discord.py
        considers the guild "chunked" and never asks for members at start-up."""
        members = [*self.members, *extra_members]
        return {
            "id": str(self.id),
            "name": self.name,
            "owner_id": str(self.owner_id),
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "features": [],
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "afk_timeout": 300,
            "afk_channel_id": None,
            "system_channel_id": str(self.text_channel.id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "roles": [role.to_payload() for role in self.roles],
            "emojis": [],
            "stickers": [],
            "channels": [channel.to_payload(self.id) for channel in self.channels],
            "threads": [],
            "members": [member.to_payload() for member in members],
            "member_count": len(members),
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
        }
