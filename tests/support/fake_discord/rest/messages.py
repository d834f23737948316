"""Channel and message routes: reading channels, posting, fetching, editing and deleting messages.

Grouped because they share one rule: a message is found only in the channel it was posted to
(guild text channels and the bot's DMs alike), and deleted or ephemeral messages are not listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List

from aiohttp import web

from ..jsontypes import JSON
from ..messages import FakeMessage
from .errors import UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, unknown
from .limits import validate_message
from .plumbing import RECORD, RecordedRequest, Route, RouteGroup, json_response, no_content

if TYPE_CHECKING:
    from ..server import FakeDiscord

CHANNEL = "/channels/{channel_id}"


def edit_message(fake: "FakeDiscord", message: FakeMessage, record: RecordedRequest) -> web.Response:
    """Apply an edit request to ``message`` (by channel, or by an interaction's webhook) and answer with it."""
    validate_message(record.json, record.uploads, creating=False, size_limit=fake.attachment_size_limit)
    message.apply(record.json or {}, record.uploads, fake._make_attachment, edit=True)
    return json_response(message.to_payload())


class MessageRoutes(RouteGroup):
    """``/channels/{channel_id}[/messages[/{message_id}]|/typing]``."""

    def routes(self) -> List[Route]:
        return [
            ("GET", CHANNEL, self.get_channel),
            ("GET", CHANNEL + "/messages", self.list_channel_messages),
            ("POST", CHANNEL + "/messages", self.create_channel_message),
            ("GET", CHANNEL + "/messages/{message_id}", self.get_channel_message),
            ("PATCH", CHANNEL + "/messages/{message_id}", self.edit_channel_message),
            ("DELETE", CHANNEL + "/messages/{message_id}", self.delete_channel_message),
            ("POST", CHANNEL + "/typing", self.trigger_typing),
        ]

    def _channel(self, request: web.Request) -> JSON:
        channel = self.fake._channel_payload(int(request.match_info["channel_id"]))
        if channel is None:
            raise unknown("Channel", UNKNOWN_CHANNEL)
        return channel

    def _channel_message(self, request: web.Request) -> FakeMessage:
        channel = self._channel(request)
        message = self.fake.messages.get(int(request.match_info["message_id"]))
        if message is None or message.deleted or str(message.channel_id) != channel["id"]:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self._channel(request))

    async def list_channel_messages(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        limit = int(request.query.get("limit", 50))
        messages = [
            m
            for m in self.fake.messages.values()
            if str(m.channel_id) == channel["id"] and not m.deleted and not m.ephemeral
        ]
        return json_response([m.to_payload() for m in reversed(messages)][:limit])

    async def create_channel_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        record: RecordedRequest = request[RECORD]
        validate_message(record.json, record.uploads, creating=True, size_limit=self.fake.attachment_size_limit)
        message = self.fake._create_channel_message(channel, record.json or {}, record.uploads)
        return json_response(message.to_payload())

    async def get_channel_message(self, request: web.Request) -> web.Response:
        return json_response(self._channel_message(request).to_payload())

    async def edit_channel_message(self, request: web.Request) -> web.Response:
        return edit_message(self.fake, self._channel_message(request), request[RECORD])

    async def delete_channel_message(self, request: web.Request) -> web.Response:
        self._channel_message(request).deleted = True
        return no_content()

    async def trigger_typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return no_content()
