"""Messages as Discord stores them: content, embeds, components, attachments and edit history.

Apart from the guild models because messages carry their own rules (Discord's edit semantics,
which attachments an edit keeps, finding a component to click) and are what most tests read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, List, Mapping, Optional, Sequence

from .jsontypes import JSON
from .snowflakes import iso_now

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
