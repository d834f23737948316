"""The messages and files the bot posted, whether through an interaction, a channel or its DMs.

Apart from the routes that create them because tests also plant messages (``add_bot_message``:
something an older bot posted, to click on) and read them back (``channel_messages``), and every
message gets the same author, id and attachment URL rules wherever it came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from .guilds import FakeUser
from .jsontypes import JSON
from .messages import FakeAttachment, FakeMessage, Upload
from .payloads import interaction_metadata
from .world import DEFAULT_GUILD, GuildRef, World

if TYPE_CHECKING:
    from .interactions import InteractionHandle


class MessageStore(World):
    """``FakeDiscord``'s messages and attachments (a mixin: the facade provides ``base_url``)."""

    default_user: FakeUser
    base_url: str

    def _init_messages(self) -> None:
        self.messages: Dict[int, FakeMessage] = {}
        self.attachments: Dict[int, FakeAttachment] = {}

    def channel_messages(self, channel_id: int, *, include_deleted: bool = False) -> List[FakeMessage]:
        """Messages in a channel (interaction replies included), oldest first."""
        return [m for m in self.messages.values() if m.channel_id == channel_id and (include_deleted or not m.deleted)]

    def add_bot_message(self, payload: JSON, *, guild: GuildRef = DEFAULT_GUILD,
                        user: Optional[FakeUser] = None) -> FakeMessage:
        """A message the bot posted earlier (say, by an older version), in ``guild``'s text
        channel or, with ``guild=None``, in its DM with ``user``: something to click on."""
        target = self._resolve_guild(guild)
        if target is not None:
            channel = target.text_channel.to_payload(target.id)
        else:
            channel = self._dm_channel_payload(user or self.default_user)
        return self._create_channel_message(channel, payload, [])

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
            interaction_metadata=interaction_metadata(handle.id, handle.type, handle.payload),
        )

    def _create_channel_message(self, channel: JSON, payload: JSON, uploads: Sequence[Upload]) -> FakeMessage:
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        return self._new_message(int(channel["id"]), guild_id, payload, uploads)
