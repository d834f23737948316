"""HTTP plumbing shared by every REST route: request records, body parsing, JSON replies, route groups.

Apart from the routes so that each resource's module is only about that resource: how a request
is read (JSON, or multipart ``payload_json`` plus ``files[n]``), recorded for tests, and answered
in the exact content type discord.py expects is said once, here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Tuple

from aiohttp import BodyPartReader, hdrs, web

from ..jsontypes import JSON
from ..messages import Upload

if TYPE_CHECKING:
    from ..server import FakeDiscord

API_PREFIX = "/api/v10"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: ``(method, path below the API prefix, handler)``.
Route = Tuple[str, str, Handler]


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


def truthy(value: Optional[str]) -> bool:
    """A query flag such as ``?wait=true`` or ``?with_response=1``."""
    return (value or "").lower() in ("1", "true", "yes")


async def read_body(request: web.Request) -> Tuple[Any, List[Upload]]:
    """The JSON body (or multipart ``payload_json``) and any ``files[n]`` uploads."""
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request)
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        return raw.decode("utf-8", "replace"), []


async def _read_multipart(request: web.Request) -> Tuple[Any, List[Upload]]:
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


def new_record(request: web.Request, payload: Any, uploads: List[Upload]) -> RecordedRequest:
    """The record of an API request, with the route template that matched it."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return RecordedRequest(
        method=request.method,
        path=request.path[len(API_PREFIX) :],
        query=dict(request.query),
        json=payload,
        uploads=uploads,
        at=time.perf_counter(),
        route=canonical[len(API_PREFIX) :] if canonical.startswith(API_PREFIX + "/") else None,
    )


class RouteGroup:
    """The routes of one resource; all state lives on the :class:`~tests.support.fake_discord.FakeDiscord`."""

    def __init__(self, fake: "FakeDiscord") -> None:
        self.fake = fake

    def routes(self) -> List[Route]:
        """This resource's routes, in the order they are matched."""
        raise NotImplementedError
