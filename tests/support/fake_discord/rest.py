"""The fake REST API (v10): the routes discord.py calls at login and in interaction flows.

Every request is parsed (JSON or multipart: ``payload_json`` plus ``files[n]``) and recorded
before it is handled, so tests can look at exactly what the bot sent. Errors use Discord's
JSON shape (``{"message", "code", "errors"}``) so discord.py raises the same exceptions it would
in production. Two deliberate choices:

* Unknown routes answer 404 and are recorded: a bot calling something the fake does not model
  fails loudly instead of silently "working".
* A crash inside the fake answers **400**, not 500: discord.py retries 5xx for ~25 s, which
  would turn a bug in the fake into a mysterious slow test.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from typing import TYPE_CHECKING, Any, Awaitable, Callable, List, Optional, Sequence, Tuple

from aiohttp import BodyPartReader, hdrs, web

from .interactions import (
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
from .models import FLAG_COMPONENTS_V2, FLAG_EPHEMERAL, FLAG_LOADING, JSON, FakeMessage, RecordedRequest, Upload

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger("fake_discord.rest")

API_PREFIX = "/api/v10"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Where the middleware leaves the parsed request for the handlers (typed keys on new aiohttp).
RECORD: Any = web.RequestKey("record", RecordedRequest) if hasattr(web, "RequestKey") else "record"


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON reply whose Content-Type is exactly ``application/json``.

    discord.py compares the header for equality, so aiohttp's ``json_response`` (which appends
    ``; charset=utf-8``) makes every reply look like text and login fails.
    """
    return web.Response(status=status, body=json.dumps(data).encode(), headers={hdrs.CONTENT_TYPE: "application/json"})


def no_content() -> web.Response:
    return web.Response(status=204)


class ApiError(Exception):
    """An error Discord would return; becomes ``{"message", "code", "errors"}`` with ``status``."""

    def __init__(self, status: int, code: int, message: str, errors: Optional[JSON] = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> JSON:
        body: JSON = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body

    def response(self) -> web.Response:
        return json_response(self.body(), self.status)


def unknown(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


UNKNOWN_CHANNEL, UNKNOWN_GUILD, UNKNOWN_MEMBER, UNKNOWN_MESSAGE = 10003, 10004, 10007, 10008
UNKNOWN_USER, UNKNOWN_WEBHOOK, UNKNOWN_COMMAND, UNKNOWN_INTERACTION = 10013, 10015, 10063, 10062
ALREADY_ACKNOWLEDGED, EMPTY_MESSAGE, INVALID_FORM_BODY, TOO_LARGE = 40060, 50006, 50035, 40005


# -- validation: Discord's documented limits ----------------------------------------------------


def _form_error(problems: List[Tuple[str, str]]) -> ApiError:
    errors = {path: {"_errors": [{"code": "FAKE_DISCORD_LIMIT", "message": text}]} for path, text in problems}
    return ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", errors)


def _check_length(problems: List[Tuple[str, str]], path: str, value: Any, limit: int, *, required: bool = False) -> int:
    text = "" if value is None else str(value)
    if required and not text.strip():
        problems.append((path, "This field is required and may not be empty."))
    if len(text) > limit:
        problems.append((path, f"Must be {limit} or fewer in length (got {len(text)})."))
    return len(text)


def _check_components(problems: List[Tuple[str, str]], components: Sequence[JSON], v2: bool) -> None:
    if not v2 and len(components) > 5:
        problems.append(("components", f"Must be 5 or fewer in length (got {len(components)})."))

    def walk(items: Sequence[JSON], path: str) -> None:
        for index, component in enumerate(items):
            here = f"{path}.{index}"
            kind = component.get("type")
            if "custom_id" in component:
                _check_length(problems, f"{here}.custom_id", component["custom_id"], 100, required=True)
            if kind == 2:
                _check_length(problems, f"{here}.label", component.get("label"), 80)
                if component.get("style") == 5 and not component.get("url"):
                    problems.append((f"{here}.url", "Link buttons need a url."))
                elif component.get("style") not in (5, 6) and "custom_id" not in component:
                    problems.append((f"{here}.custom_id", "This field is required."))
            if kind == 1:
                children = component.get("components") or []
                if not 1 <= len(children) <= 5:
                    problems.append((f"{here}.components", f"Must be between 1 and 5 in length (got {len(children)})."))
            if kind == 3 and len(component.get("options") or []) > 25:
                problems.append((f"{here}.options", "Must be 25 or fewer in length."))
            walk(component.get("components") or [], f"{here}.components")

    walk(components, "components")


def validate_message(payload: Optional[JSON], uploads: Sequence[Upload], *, creating: bool, size_limit: int) -> None:
    """Refuse a message body the way Discord would (limits, empty messages, oversized files)."""
    payload = payload or {}
    problems: List[Tuple[str, str]] = []
    flags = int(payload.get("flags") or 0)
    v2 = bool(flags & FLAG_COMPONENTS_V2)

    _check_length(problems, "content", payload.get("content"), 2000)
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        problems.append(("embeds", "Must be 10 or fewer in length."))
    total = 0
    for i, embed in enumerate(embeds):
        here = f"embeds.{i}"
        total += _check_length(problems, f"{here}.title", embed.get("title"), 256)
        total += _check_length(problems, f"{here}.description", embed.get("description"), 4096)
        total += _check_length(problems, f"{here}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        total += _check_length(problems, f"{here}.author.name", (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append((f"{here}.fields", "Must be 25 or fewer in length."))
        for j, embed_field in enumerate(fields):
            total += _check_length(problems, f"{here}.fields.{j}.name", embed_field.get("name"), 256, required=True)
            total += _check_length(problems, f"{here}.fields.{j}.value", embed_field.get("value"), 1024, required=True)
    if total > 6000:
        problems.append(("embeds", f"Embed size exceeds maximum size of 6000 (got {total})."))
    if v2 and (payload.get("content") or embeds):
        problems.append(("content", "Messages with the IS_COMPONENTS_V2 flag cannot have content or embeds."))
    _check_components(problems, payload.get("components") or [], v2)
    if len(payload.get("attachments") or uploads) > 10:
        problems.append(("attachments", "Must be 10 or fewer in length."))
    if problems:
        raise _form_error(problems)
    for upload in uploads:
        if len(upload.data) > size_limit:
            raise ApiError(413, TOO_LARGE, "Request entity too large")
    if creating and not (
        payload.get("content") or embeds or payload.get("components") or uploads or payload.get("poll")
    ):
        raise ApiError(400, EMPTY_MESSAGE, "Cannot send an empty message")


def validate_modal(data: JSON) -> None:
    problems: List[Tuple[str, str]] = []
    _check_length(problems, "data.title", data.get("title"), 45, required=True)
    _check_length(problems, "data.custom_id", data.get("custom_id"), 100, required=True)
    if not 1 <= len(data.get("components") or []) <= 5:
        problems.append(("data.components", "Must be between 1 and 5 in length."))
    if problems:
        raise _form_error(problems)


def validate_choices(data: JSON) -> None:
    problems: List[Tuple[str, str]] = []
    choices = data.get("choices") or []
    if len(choices) > 25:
        problems.append(("data.choices", "Must be 25 or fewer in length."))
    for i, choice in enumerate(choices):
        _check_length(problems, f"data.choices.{i}.name", choice.get("name"), 100, required=True)
        if isinstance(choice.get("value"), str):
            _check_length(problems, f"data.choices.{i}.value", choice.get("value"), 100)
    if problems:
        raise _form_error(problems)


def validate_command(command: JSON, index: int) -> List[Tuple[str, str]]:
    """The checks on a command definition that catch real mistakes (discord.py checks most others)."""
    problems: List[Tuple[str, str]] = []
    name = command.get("name") or ""
    if not 1 <= len(name) <= 32:
        problems.append((f"{index}.name", "Must be between 1 and 32 in length."))
    if command.get("type", 1) == 1:
        if name != name.lower():
            problems.append((f"{index}.name", "Slash command names must be lower case."))
        _check_length(problems, f"{index}.description", command.get("description"), 100, required=True)
    if len(command.get("options") or []) > 25:
        problems.append((f"{index}.options", "Must be 25 or fewer in length."))
    return problems


# -- request parsing --------------------------------------------------------------------------------


async def read_body(request: web.Request) -> Tuple[Any, List[Upload]]:
    """The JSON body (or multipart ``payload_json``) and any ``files[n]`` uploads."""
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        uploads: List[Upload] = []
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue  # nested multipart: discord.py never sends one
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(await part.text())
            elif name.startswith("files[") and name.endswith("]"):
                data = await part.read(decode=False)
                uploads.append(
                    Upload(
                        index=int(name[len("files[") : -1]),
                        filename=part.filename or f"file{len(uploads)}",
                        content_type=part.headers.get(hdrs.CONTENT_TYPE),
                        data=bytes(data),
                    )
                )
        return payload, uploads
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        return raw.decode("utf-8", "replace"), []


def _truthy(value: Optional[str]) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


# -- the API ----------------------------------------------------------------------------------------


class RestApi:
    """Route handlers; all state lives on the :class:`~tests.fake_discord.FakeDiscord`."""

    def __init__(self, fake: "FakeDiscord") -> None:
        self.fake = fake

    def add_routes(self, router: web.UrlDispatcher) -> None:
        p = API_PREFIX
        app = "/applications/{app_id}"
        hook = "/webhooks/{app_id}/{token}"
        table: List[Tuple[str, str, Handler]] = [
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway_bot),
            ("GET", "/users/@me", self.get_me),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            # Application commands, global and per guild.
            ("GET", app + "/commands", self.list_commands),
            ("PUT", app + "/commands", self.bulk_overwrite_commands),
            ("POST", app + "/commands", self.upsert_command),
            ("GET", app + "/commands/{command_id}", self.get_command),
            ("PATCH", app + "/commands/{command_id}", self.edit_command),
            ("DELETE", app + "/commands/{command_id}", self.delete_command),
            ("GET", app + "/guilds/{guild_id}/commands", self.list_commands),
            ("PUT", app + "/guilds/{guild_id}/commands", self.bulk_overwrite_commands),
            ("POST", app + "/guilds/{guild_id}/commands", self.upsert_command),
            ("GET", app + "/guilds/{guild_id}/commands/{command_id}", self.get_command),
            ("PATCH", app + "/guilds/{guild_id}/commands/{command_id}", self.edit_command),
            ("DELETE", app + "/guilds/{guild_id}/commands/{command_id}", self.delete_command),
            # Interactions and their webhook.
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback),
            ("POST", hook, self.execute_webhook),
            ("GET", hook + "/messages/{message_id}", self.get_webhook_message),
            ("PATCH", hook + "/messages/{message_id}", self.edit_webhook_message),
            ("DELETE", hook + "/messages/{message_id}", self.delete_webhook_message),
            # Channels and messages.
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("GET", "/channels/{channel_id}/messages", self.list_channel_messages),
            ("POST", "/channels/{channel_id}/messages", self.create_channel_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_channel_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_channel_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_channel_message),
            ("POST", "/channels/{channel_id}/typing", self.trigger_typing),
            # Guilds.
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.get_guild_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]
        for method, path, handler in table:
            router.add_route(method, p + path, handler)

    # -- middleware and fallbacks -----------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record every API request, check the bot token, turn errors into Discord-shaped JSON."""
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        fake = self.fake
        try:
            payload, uploads = await read_body(request)
        except Exception as exc:  # a malformed body is the bot's bug: say so loudly
            payload, uploads = None, []
            fake.errors.append(f"could not parse body of {request.method} {request.path}: {exc!r}")
        resource = request.match_info.route.resource
        canonical = resource.canonical if resource is not None else ""
        record = RecordedRequest(
            method=request.method,
            path=request.path[len(API_PREFIX) :],
            query=dict(request.query),
            json=payload,
            uploads=uploads,
            at=time.perf_counter(),
            route=canonical[len(API_PREFIX) :] if canonical.startswith(API_PREFIX + "/") else None,
        )
        request[RECORD] = record
        fake.requests.append(record)
        try:
            if not self._token_in_url(record.path) and request.headers.get(hdrs.AUTHORIZATION) != f"Bot {fake.token}":
                raise ApiError(401, 0, "401: Unauthorized")
            response = await handler(request)
        except ApiError as exc:
            record.error = exc.body()
            response = exc.response()
        except Exception as exc:
            log.exception("fake discord crashed handling %s %s", request.method, request.path)
            fake.errors.append(f"{request.method} {request.path}: {exc!r}\n{traceback.format_exc()}")
            error = ApiError(400, 0, f"fake discord internal error: {exc!r}")
            record.error = error.body()
            response = error.response()
        record.status = response.status
        if response.status >= 400:
            log.info("%s %s -> %s", request.method, request.path, response.status)
        fake._notify()
        return response

    @staticmethod
    def _token_in_url(path: str) -> bool:
        """Interaction callbacks and webhook-token routes authenticate by the token in the URL."""
        return path.startswith("/interactions/") or (path.startswith("/webhooks/") and path.count("/") >= 3)

    async def unknown_route(self, request: web.Request) -> web.Response:
        """Anything the fake does not model: 404, logged and recorded for ``assert_clean``."""
        record: Optional[RecordedRequest] = request.get(RECORD)
        log.warning("fake discord: unknown route %s %s", request.method, request.path)
        if record is not None:
            self.fake.unknown_routes.append(record)
        else:
            self.fake.unknown_routes.append(
                RecordedRequest(request.method, request.path, dict(request.query), None, [], time.perf_counter())
            )
        return json_response({"message": "404: Not Found (route not modelled by the fake)", "code": 0}, 404)

    async def get_attachment(self, request: web.Request) -> web.Response:
        """Serves uploaded files at their ``url`` so ``Attachment.read()`` works too."""
        attachment = self.fake.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None:
            return web.Response(status=404)
        return web.Response(
            body=attachment.data, headers={hdrs.CONTENT_TYPE: attachment.content_type or "application/octet-stream"}
        )

    # -- login ------------------------------------------------------------------------------------

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url})

    async def get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.fake.gateway_url,
                "shards": self.fake.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response(self.fake._bot_user_payload())

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.fake.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise unknown("User", UNKNOWN_USER)
        return json_response(user.to_payload())

    async def get_application(self, request: web.Request) -> web.Response:
        return json_response(self.fake._application_payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        body = request[RECORD].json or {}
        user = self.fake.users.get(int(body.get("recipient_id", 0)))
        if user is None:
            raise unknown("User", UNKNOWN_USER)
        return json_response(self.fake._dm_channel_payload(user))

    # -- application commands -----------------------------------------------------------------------

    def _scope(self, request: web.Request) -> Optional[int]:
        if int(request.match_info["app_id"]) != self.fake.application_id:
            raise ApiError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return None
        if self.fake.guild(int(guild_id)) is None:
            raise ApiError(403, 50001, "Missing Access")
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
            raise _form_error([("_root", "Expected a list of commands.")])
        problems = [problem for index, command in enumerate(body) for problem in validate_command(command, index)]
        if problems:
            raise _form_error(problems)
        stored = self.fake._store_commands(scope, body)
        self.fake._record_sync(scope, body)
        return json_response(stored)

    async def upsert_command(self, request: web.Request) -> web.Response:
        scope = self._scope(request)
        body = request[RECORD].json or {}
        problems = validate_command(body, 0)
        if problems:
            raise _form_error(problems)
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

    # -- interactions ------------------------------------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        """``POST /interactions/{id}/{token}/callback``: the bot's one answer to an interaction."""
        fake = self.fake
        record: RecordedRequest = request[RECORD]
        handle = fake.interactions.get(int(request.match_info["interaction_id"]))
        if handle is None or handle.token != request.match_info["token"]:
            raise unknown("interaction", UNKNOWN_INTERACTION)
        handle.requests.append(record)
        if handle.callback is not None:
            raise ApiError(400, ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
        body: JSON = record.json or {}
        deadline = fake.interaction_deadline
        if deadline is not None and handle.sent_at is not None and record.at - handle.sent_at > deadline:
            handle.late, handle.callback, handle.callback_at = True, body, record.at
            raise unknown("interaction", UNKNOWN_INTERACTION)

        response_type = body.get("type")
        if response_type not in ALLOWED_CALLBACKS.get(handle.type, frozenset()):
            raise _form_error(
                [("type", f"Response type {response_type} is not valid for interaction type {handle.type}.")]
            )
        data: JSON = body.get("data") or {}
        size_limit = fake.attachment_size_limit
        message: Optional[FakeMessage] = None
        if response_type == CHANNEL_MESSAGE:
            validate_message(data, record.uploads, creating=True, size_limit=size_limit)
            message = fake._create_message(
                handle, data, record.uploads, message_type=20 if handle.type == APPLICATION_COMMAND else 0
            )
            handle.original = message
        elif response_type == DEFERRED_CHANNEL_MESSAGE:
            flags = (int(data.get("flags") or 0) & FLAG_EPHEMERAL) | FLAG_LOADING
            message = fake._create_message(
                handle, {"flags": flags}, [], message_type=20 if handle.type == APPLICATION_COMMAND else 0
            )
            handle.original = message
        elif response_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            if handle.source_message is None:
                raise _form_error([("type", "There is no message to update for this interaction.")])
            if response_type == UPDATE_MESSAGE:
                validate_message(data, record.uploads, creating=False, size_limit=size_limit)
                handle.source_message.apply(data, record.uploads, fake._make_attachment, edit=True)
                message = handle.source_message
            handle.original = handle.source_message
        elif response_type == MODAL:
            validate_modal(data)
        elif response_type == AUTOCOMPLETE_RESULT:
            validate_choices(data)
        handle.callback, handle.callback_at = body, record.at

        if not _truthy(request.query.get("with_response")):
            return no_content()
        interaction: JSON = {
            "id": str(handle.id),
            "type": handle.type,
            "activity_instance_id": None,
            "response_message_id": str(message.id) if message else None,
            "response_message_loading": response_type == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(message and message.ephemeral),
        }
        resource: JSON = {"type": response_type}
        if message is not None:
            resource["message"] = message.to_payload()
        return json_response({"interaction": interaction, "resource": resource})

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
        if not _truthy(request.query.get("wait")):
            return no_content()
        return json_response(message.to_payload())

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_handle(request)
        return json_response(self._webhook_message(handle, request.match_info["message_id"]).to_payload())

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_handle(request)
        message = self._webhook_message(handle, request.match_info["message_id"])
        record: RecordedRequest = request[RECORD]
        validate_message(record.json, record.uploads, creating=False, size_limit=self.fake.attachment_size_limit)
        message.apply(record.json or {}, record.uploads, self.fake._make_attachment, edit=True)
        return json_response(message.to_payload())

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        handle = self._webhook_handle(request)
        self._webhook_message(handle, request.match_info["message_id"]).deleted = True
        return no_content()

    # -- channels and messages -----------------------------------------------------------------------

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
        message = self._channel_message(request)
        record: RecordedRequest = request[RECORD]
        validate_message(record.json, record.uploads, creating=False, size_limit=self.fake.attachment_size_limit)
        message.apply(record.json or {}, record.uploads, self.fake._make_attachment, edit=True)
        return json_response(message.to_payload())

    async def delete_channel_message(self, request: web.Request) -> web.Response:
        self._channel_message(request).deleted = True
        return no_content()

    async def trigger_typing(self, request: web.Request) -> web.Response:
        self._channel(request)
        return no_content()

    # -- guilds ------------------------------------------------------------------------------------

    def _guild(self, request: web.Request):
        guild = self.fake.guild(int(request.match_info["guild_id"]))
        if guild is None:
            raise unknown("Guild", UNKNOWN_GUILD)
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        payload = guild.to_payload(self.fake._own_members(guild))
        for key in ("channels", "members", "threads", "voice_states", "presences", "joined_at", "large", "unavailable"):
            payload.pop(key, None)
        return json_response(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        return json_response([channel.to_payload(guild.id) for channel in guild.channels])

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        return json_response([role.to_payload() for role in self._guild(request).roles])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        user_id = int(request.match_info["user_id"])
        member = next((m for m in [*guild.members, *self.fake._own_members(guild)] if m.user.id == user_id), None)
        if member is None:
            raise unknown("Member", UNKNOWN_MEMBER)
        return json_response(member.to_payload())
