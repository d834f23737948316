"""Interaction routes: the bot's one callback per interaction, then the interaction's webhook.

Grouped because they share the interaction's token and its rules: a callback is refused after
Discord's deadline, twice, or with a type the interaction does not allow; followups need an
acknowledged interaction; ``@original`` is the reply (or the clicked message). Every request is
also filed on its :class:`~tests.support.fake_discord.InteractionHandle`, so a test reads the
conversation in order.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from aiohttp import web

from ..interactions import (
    ALLOWED_CALLBACKS,
    APPLICATION_COMMAND,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    MODAL,
    UPDATE_MESSAGE,
    InteractionHandle,
)
from ..jsontypes import JSON
from ..messages import FLAG_EPHEMERAL, FLAG_LOADING, FakeMessage, Upload
from ..payloads import callback_response_payload
from .errors import (
    ALREADY_ACKNOWLEDGED,
    UNKNOWN_INTERACTION,
    UNKNOWN_MESSAGE,
    UNKNOWN_WEBHOOK,
    ApiError,
    form_error,
    unknown,
)
from .limits import validate_choices, validate_message, validate_modal
from .messages import edit_message
from .plumbing import RECORD, RecordedRequest, Route, RouteGroup, json_response, no_content, truthy

HOOK = "/webhooks/{app_id}/{token}"


class InteractionRoutes(RouteGroup):
    """``/interactions/{id}/{token}/callback`` and ``/webhooks/{app_id}/{token}[/messages/{id}]``."""

    def routes(self) -> List[Route]:
        return [
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback),
            ("POST", HOOK, self.execute_webhook),
            ("GET", HOOK + "/messages/{message_id}", self.get_webhook_message),
            ("PATCH", HOOK + "/messages/{message_id}", self.edit_webhook_message),
            ("DELETE", HOOK + "/messages/{message_id}", self.delete_webhook_message),
        ]

    # -- the callback ------------------------------------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        """``POST /interactions/{id}/{token}/callback``: the bot's one answer to an interaction."""
        record: RecordedRequest = request[RECORD]
        handle = self._callback_handle(request, record)
        body: JSON = record.json or {}
        response_type = body.get("type")
        if response_type not in ALLOWED_CALLBACKS.get(handle.type, frozenset()):
            raise form_error(
                [("type", f"Response type {response_type} is not valid for interaction type {handle.type}.")]
            )
        message = self._apply_callback(handle, response_type, body.get("data") or {}, record.uploads)
        handle.callback, handle.callback_at = body, record.at
        if not truthy(request.query.get("with_response")):
            return no_content()
        return json_response(callback_response_payload(handle.id, handle.type, response_type, message))

    def _callback_handle(self, request: web.Request, record: RecordedRequest) -> InteractionHandle:
        """The interaction being answered, refused if unknown, already answered, or past the deadline."""
        fake = self.fake
        handle = fake.interactions.get(int(request.match_info["interaction_id"]))
        if handle is None or handle.token != request.match_info["token"]:
            raise unknown("interaction", UNKNOWN_INTERACTION)
        handle.requests.append(record)
        if handle.callback is not None:
            raise ApiError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        deadline = fake.interaction_deadline
        if deadline is not None and handle.sent_at is not None and record.at - handle.sent_at > deadline:
            handle.late, handle.callback, handle.callback_at = True, record.json or {}, record.at
            raise unknown("interaction", UNKNOWN_INTERACTION)
        return handle

    def _apply_callback(
        self, handle: InteractionHandle, response_type: int, data: JSON, uploads: Sequence[Upload]
    ) -> Optional[FakeMessage]:
        """Do what the callback type says; the message it created or changed, if any."""
        fake = self.fake
        message_type = 20 if handle.type == APPLICATION_COMMAND else 0
        message: Optional[FakeMessage] = None
        if response_type == CHANNEL_MESSAGE:
            validate_message(data, uploads, creating=True, size_limit=fake.attachment_size_limit)
            message = handle.original = fake._create_message(handle, data, uploads, message_type=message_type)
        elif response_type == DEFERRED_CHANNEL_MESSAGE:
            flags = (int(data.get("flags") or 0) & FLAG_EPHEMERAL) | FLAG_LOADING
            message = handle.original = fake._create_message(handle, {"flags": flags}, [], message_type=message_type)
        elif response_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            if handle.source_message is None:
                raise form_error([("type", "There is no message to update for this interaction.")])
            if response_type == UPDATE_MESSAGE:
                validate_message(data, uploads, creating=False, size_limit=fake.attachment_size_limit)
                handle.source_message.apply(data, uploads, fake._make_attachment, edit=True)
                message = handle.source_message
            handle.original = handle.source_message
        elif response_type == MODAL:
            validate_modal(data)
        elif response_type == AUTOCOMPLETE_RESULT:
            validate_choices(data)
        return message

    # -- the interaction's webhook -------------------------------------------------------------------

    def _webhook_handle(self, request: web.Request) -> InteractionHandle:
        handle = self.fake._interactions_by_token.get(request.match_info["token"])
        if handle is None or int(request.match_info["app_id"]) != self.fake.application_id:
            raise unknown("Webhook", UNKNOWN_WEBHOOK)
        handle.requests.append(request[RECORD])
        return handle

    @staticmethod
    def _webhook_message(handle: InteractionHandle, message_id: str) -> FakeMessage:
        if message_id == "@original":
            message = handle.original
        else:
            message = next(
                (m for m in [handle.original, *handle.followups] if m is not None and str(m.id) == message_id), None
            )
        if message is None or message.deleted:
            raise unknown("Message", UNKNOWN_MESSAGE)
        return message

    async def execute_webhook(self, request: web.Request) -> web.Response:
        """``POST /webhooks/{app}/{token}``: a followup message."""
        handle = self._webhook_handle(request)
        if not handle.acknowledged or handle.late:
            raise unknown("Webhook", UNKNOWN_WEBHOOK)
        record: RecordedRequest = request[RECORD]
        validate_message(record.json, record.uploads, creating=True, size_limit=self.fake.attachment_size_limit)
        message = self.fake._create_message(handle, record.json or {}, record.uploads, message_type=0)
        handle.followups.append(message)
        if not truthy(request.query.get("wait")):
            return no_content()
        return json_response(message.to_payload())

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_handle(request)
        return json_response(self._webhook_message(handle, request.match_info["message_id"]).to_payload())

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_handle(request)
        message = self._webhook_message(handle, request.match_info["message_id"])
        return edit_message(self.fake, message, request[RECORD])

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_handle(request)
        self._webhook_message(handle, request.match_info["message_id"]).deleted = True
        return no_content()
