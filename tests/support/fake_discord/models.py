"""The plain data a fake Discord keeps: users, guilds, messages, attachments, recorded requests.

Everything here renders to the JSON shapes Discord's API v10 uses (``to_payload``), because the
real discord.py client parses these payloads: a missing key is a ``KeyError`` deep inside
discord.py, so the required keys are listed here once, next to the object they describe.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

JSON = Dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000

# Permission bits the fake needs by name (values from Discord's documentation).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
#: Every bit Discord currently defines (and a few spare); what owners and administrators get.
ALL_PERMISSIONS = (1 << 51) - 1
#: What ``@everyone`` may do in a freshly created server: enough to use slash commands, not to manage.
DEFAULT_EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | ADD_REACTIONS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)

# Message flag bits.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15


def _clone(value: Any) -> Any:
    """A copy of a message's JSON parts, shallow on purpose: request bodies are parsed afresh
    for every request and the fake never changes an embed or component in place (edits
    replace whole lists), so sharing the inner dicts is safe. A deep copy per message was a
    measurable share of the latency benchmark, where the fake runs in the bot's own loop."""
    return list(value) if isinstance(value, list) else dict(value) if isinstance(value, dict) else value


def iso_now() -> str:
    """The current UTC time in the ISO 8601 form Discord uses for timestamps."""
    return datetime.now(timezone.utc).isoformat()


class SnowflakeGenerator:
    """Makes unique, time-ordered Discord snowflakes.

    Real-looking snowflakes matter: discord.py derives ``created_at`` and an interaction's
    ``expires_at`` (15 minutes after creation) from the id, so ids minted "now" keep
    ``Interaction.is_expired()`` honest.
    """

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._last = 0

    def __call__(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        snowflake = (ms << 22) | (next(self._counter) & 0x3FFFFF)
        # Never go backwards, even if the wall clock does.
        self._last = max(self._last + 1, snowflake)
        return self._last


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


@dataclass
class Upload:
    """One ``files[n]`` part of a multipart request, as the bot sent it."""

    index: int
    filename: str
    content_type: Optional[str]
    data: bytes


@dataclass
class FakeAttachment:
    """A file stored on a message; ``data`` is the bytes the bot uploaded."""

    id: int
    filename: str
    data: bytes
    url: str
    content_type: Optional[str] = None
    description: Optional[str] = None

    def text(self, encoding: str = "utf-8") -> str:
        return self.data.decode(encoding)

    def to_payload(self) -> JSON:
        payload: JSON = {
            "id": str(self.id),
            "filename": self.filename,
            "size": len(self.data),
            "url": self.url,
            "proxy_url": self.url,
        }
        if self.content_type:
            payload["content_type"] = self.content_type
        if self.description is not None:
            payload["description"] = self.description
        return payload


#: Builds a stored attachment from an upload: ``(upload, description) -> FakeAttachment``.
AttachmentFactory = Callable[[Upload, Optional[str]], FakeAttachment]


def _walk_components(components: Sequence[JSON]) -> Iterator[JSON]:
    """Every component, depth first, through action rows, containers, sections and labels."""
    for component in components:
        yield component
        yield from _walk_components(component.get("components") or [])
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield from _walk_components([child])


@dataclass
class FakeMessage:
    """A message as Discord stores it, plus the history of how it got there.

    ``apply`` follows Discord's edit semantics: only the keys present in a request change, and an
    ``attachments`` list names exactly the attachments to keep (existing ids) or add (upload indices).
    """

    id: int
    channel_id: int
    author: JSON
    guild_id: Optional[int] = None
    type: int = 0
    content: str = ""
    embeds: List[JSON] = field(default_factory=list)
    components: List[JSON] = field(default_factory=list)
    attachments: List[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    tts: bool = False
    allowed_mentions: Optional[JSON] = None
    webhook_id: Optional[int] = None
    application_id: Optional[int] = None
    interaction_metadata: Optional[JSON] = None
    timestamp: str = field(default_factory=iso_now)
    edited_timestamp: Optional[str] = None
    deleted: bool = False
    #: ``to_payload()`` snapshots after creation and after every edit, oldest first.
    revisions: List[JSON] = field(default_factory=list)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred "thinking…" placeholder that was never edited."""
        return bool(self.flags & FLAG_LOADING)

    @property
    def embed(self) -> Optional[JSON]:
        """The first embed, or ``None``: most bot replies have exactly one."""
        return self.embeds[0] if self.embeds else None

    def apply(
        self, payload: Mapping[str, Any], uploads: Sequence[Upload], make_attachment: AttachmentFactory, *, edit: bool
    ) -> None:
        """Apply a create or edit request body (``payload``) and its uploaded files."""
        if "content" in payload:
            self.content = payload["content"] or ""
        if "embeds" in payload:
            self.embeds = _clone(payload["embeds"] or [])
        if "components" in payload:
            self.components = _clone(payload["components"] or [])
        if "tts" in payload:
            self.tts = bool(payload["tts"])
        if "allowed_mentions" in payload:
            self.allowed_mentions = _clone(payload["allowed_mentions"])
        if edit:
            # Ephemerality is fixed at creation; the first edit of a deferred reply ends "loading".
            new_flags = int(payload.get("flags") or 0) if "flags" in payload else self.flags
            self.flags = (self.flags & FLAG_EPHEMERAL) | (new_flags & ~(FLAG_EPHEMERAL | FLAG_LOADING))
            self.edited_timestamp = iso_now()
        elif "flags" in payload:
            self.flags = int(payload["flags"] or 0)
        self.attachments = self._resolve_attachments(payload.get("attachments"), uploads, make_attachment)
        self.revisions.append(self.to_payload())

    def _resolve_attachments(
        self, spec: Optional[Sequence[JSON]], uploads: Sequence[Upload], make_attachment: AttachmentFactory
    ) -> List[FakeAttachment]:
        by_index = {upload.index: upload for upload in uploads}
        if spec is None:
            # No "attachments" key: keep what is there and add every uploaded file.
            return [*self.attachments, *(make_attachment(upload, None) for upload in uploads)]
        existing = {attachment.id: attachment for attachment in self.attachments}
        result: List[FakeAttachment] = []
        used: set = set()
        for entry in spec:
            entry_id = int(entry["id"])
            if entry_id in existing:
                result.append(existing[entry_id])
            elif entry_id in by_index:
                used.add(entry_id)
                result.append(make_attachment(by_index[entry_id], entry.get("description")))
        result.extend(make_attachment(upload, None) for index, upload in by_index.items() if index not in used)
        return result

    # -- finding components -------------------------------------------------------------

    def iter_components(self) -> Iterator[JSON]:
        """Every component of the message, depth first (rows, containers, sections included)."""
        return _walk_components(self.components)

    @property
    def buttons(self) -> List[JSON]:
        return [component for component in self.iter_components() if component.get("type") == 2]

    def find_component(self, custom_id: Optional[str] = None, *, label: Optional[str] = None) -> Optional[JSON]:
        """The first component whose ``custom_id`` equals ``custom_id`` (or whose label contains ``label``)."""
        for component in self.iter_components():
            if "custom_id" not in component:
                continue
            if custom_id is not None and component["custom_id"] == custom_id:
                return component
            if label is not None and label in (component.get("label") or ""):
                return component
        return None

    def custom_ids(self) -> List[str]:
        return [component["custom_id"] for component in self.iter_components() if "custom_id" in component]

    # -- rendering ----------------------------------------------------------------------

    def to_payload(self) -> JSON:
        payload: JSON = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "type": self.type,
            "content": self.content,
            "embeds": _clone(self.embeds),
            "components": _clone(self.components),
            "attachments": [attachment.to_payload() for attachment in self.attachments],
            "author": self.author,
            "timestamp": self.timestamp,
            "edited_timestamp": self.edited_timestamp,
            "flags": self.flags,
            "tts": self.tts,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
        }
        if self.guild_id is not None:
            payload["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            payload["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            payload["application_id"] = str(self.application_id)
        if self.interaction_metadata is not None:
            payload["interaction_metadata"] = self.interaction_metadata
        return payload


@dataclass
class RecordedRequest:
    """One REST request the bot made, as the fake understood it."""

    method: str
    #: Path below the API base, e.g. ``/webhooks/1/abc/messages/@original``.
    path: str
    query: Dict[str, str]
    #: The JSON body (for multipart requests: the parsed ``payload_json`` part), or ``None``.
    json: Any
    uploads: List[Upload]
    #: ``time.perf_counter()`` when the request arrived.
    at: float
    #: The route template that handled it (``None`` for unknown routes).
    route: Optional[str] = None
    status: int = 0
    #: For refused requests: the Discord-style error body the fake answered with.
    error: Optional[JSON] = None

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} -> {self.status}>"
