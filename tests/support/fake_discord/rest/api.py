"""The REST API as mounted on the server: the middleware every request passes, the route groups, the fallbacks.

Every request is parsed and recorded before it is handled, so tests can look at exactly what the
bot sent; errors use Discord's JSON shape so discord.py raises the same exceptions it would in
production. Two deliberate choices:

* Unknown routes answer 404 and are recorded: a bot calling something the fake does not model
  fails loudly instead of silently "working".
* A crash inside the fake answers **400**, not 500: discord.py retries 5xx for ~25 s, which
  would turn a bug in the fake into a mysterious slow test.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, List, Optional

from aiohttp import hdrs, web

from .commands import CommandRoutes
from .errors import ApiError
from .guilds import GuildRoutes
from .login import LoginRoutes
from .messages import MessageRoutes
from .plumbing import API_PREFIX, RECORD, Handler, RecordedRequest, RouteGroup, json_response, new_record, read_body
from .webhooks import InteractionRoutes

if TYPE_CHECKING:
    from ..server import FakeDiscord

log = logging.getLogger("fake_discord.rest")


class RestApi:
    """The route groups by resource, plus the middleware and fallbacks around them."""

    def __init__(self, fake: "FakeDiscord") -> None:
        self.fake = fake
        self.groups: List[RouteGroup] = [
            LoginRoutes(fake),
            CommandRoutes(fake),
            InteractionRoutes(fake),
            MessageRoutes(fake),
            GuildRoutes(fake),
        ]

    def add_routes(self, router: web.UrlDispatcher) -> None:
        for group in self.groups:
            for method, path, handler in group.routes():
                router.add_route(method, API_PREFIX + path, handler)

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
        record = new_record(request, payload, uploads)
        request[RECORD] = record
        fake.requests.append(record)
        response = await self._answer(request, handler, record)
        record.status = response.status
        if response.status >= 400:
            log.info("%s %s -> %s", request.method, request.path, response.status)
        fake._notify()
        return response

    async def _answer(self, request: web.Request, handler: Handler, record: RecordedRequest) -> web.StreamResponse:
        """The handler's response, or the Discord-shaped error it raised (a crash: 400, see above)."""
        try:
            authorized = request.headers.get(hdrs.AUTHORIZATION) == f"Bot {self.fake.token}"
            if not self._token_in_url(record.path) and not authorized:
                raise ApiError(401, 0, "401: Unauthorized")
            return await handler(request)
        except ApiError as exc:
            record.error = exc.body()
            return exc.response()
        except Exception as exc:
            log.exception("fake discord crashed handling %s %s", request.method, request.path)
            self.fake.errors.append(f"{request.method} {request.path}: {exc!r}\n{traceback.format_exc()}")
            error = ApiError(400, 0, f"fake discord internal error: {exc!r}")
            record.error = error.body()
            return error.response()

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
