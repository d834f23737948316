"""Discord's REST errors: the JSON shape and codes discord.py turns into its exceptions.

Apart from the routes so that every handler refuses a request the same way, and a test reading
``fake.api_errors`` sees the body Discord would have sent (``{"message", "code", "errors"}``).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from aiohttp import web

from ..jsontypes import JSON
from .plumbing import json_response

UNKNOWN_CHANNEL, UNKNOWN_GUILD, UNKNOWN_MEMBER, UNKNOWN_MESSAGE = 10003, 10004, 10007, 10008
UNKNOWN_USER, UNKNOWN_WEBHOOK, UNKNOWN_COMMAND, UNKNOWN_INTERACTION = 10013, 10015, 10063, 10062
ALREADY_ACKNOWLEDGED, EMPTY_MESSAGE, INVALID_FORM_BODY, TOO_LARGE = 40060, 50006, 50035, 40005
MISSING_ACCESS = 50001

#: Problems found in a request body: ``(field path, what is wrong)``.
Problems = List[Tuple[str, str]]


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


def missing_access() -> ApiError:
    return ApiError(403, MISSING_ACCESS, "Missing Access")


def form_error(problems: Problems) -> ApiError:
    """400 "Invalid Form Body" listing each problem under its field path, as Discord does."""
    errors = {path: {"_errors": [{"code": "FAKE_DISCORD_LIMIT", "message": text}]} for path, text in problems}
    return ApiError(400, INVALID_FORM_BODY, "Invalid Form Body", errors)
