"""Exceptions the bot's services raise on purpose.

Each message is written for the person who caused it (a member submitting a name, an admin
changing a status), so a cog can reply with ``str(exc)`` as it is, and the attributes carry the
same facts for richer replies (a Discord timestamp for ``resets_at``, for example). Errors that
only an operator can fix (a database from a newer DinoBot) derive from :class:`StorageError`
instead, so a cog can tell "tell the user" from "tell the owner" with one ``except``.

``model.errors.InvalidName`` (a name that is not 3–32 letters a–z) is deliberately not wrapped:
it already carries a user-facing message and passes through the services unchanged.
"""
from __future__ import annotations

import math

from model.errors import InvalidName


class DinoBotError(Exception):
    """Base class for every error the bot's services raise on purpose."""


class DuplicateName(DinoBotError):
    """The name was already submitted in this server (whatever its status now)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"'{name}' has already been submitted in this server.")


class KnownDinosaur(DinoBotError):
    """The name belongs to the base corpus: it is a real dinosaur, not an invented one."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"'{name}' is already a known dinosaur; try inventing a new one!")


class DailyLimitReached(DinoBotError):
    """The member used up their submissions for the rolling 24 hours in this server."""

    def __init__(self, limit: int, resets_at: float, now: float) -> None:
        self.limit = limit
        self.resets_at = resets_at
        self.retry_after = max(0.0, resets_at - now)
        super().__init__(
            f"You can submit {limit} names per 24 hours in this server and have used them all; "
            f"you can submit again in {_human_duration(self.retry_after)}."
        )


class NotFound(DinoBotError):
    """A submission, model version or other record that does not exist in this server."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} was not found in this server.")


class AlreadyKept(DinoBotError):
    """The member already kept this name in this server: one vote per member."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"You have already kept '{name}' in this server; each member's keep counts once.")


class NotKeepable(DinoBotError):
    """The name was rejected or removed by a moderator, so it cannot be kept again."""

    def __init__(self, name: str, status: str) -> None:
        self.name = name
        self.status = status
        super().__init__(f"'{name}' was {status} by a moderator in this server, so it cannot be kept.")


class VersionNotServable(DinoBotError):
    """A model version that exists but cannot serve: discarded, or its checkpoint is unusable."""

    def __init__(self, version: int, why: str, detail: str = "") -> None:
        self.version = version
        super().__init__(f"Version {version} cannot serve this server: {why}." + (f" {detail}" if detail else ""))


class StorageError(DinoBotError):
    """The database cannot be used as it is; only the bot's operator can fix this."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached (PostgreSQL down, restarting, or the network between).

    Nothing was written by the operation that raised it, or at least nothing was acknowledged:
    a member is told to try again, and the connection pool reconnects by itself once the
    database is back.
    """

    MEMBER_TEXT = ("Sorry, DinoBot can't reach its database right now, so nothing was saved or changed. "
                   "Please try again in a minute.")


class SchemaTooNew(StorageError):
    """The database was written by a newer DinoBot; opening it could corrupt its data."""

    def __init__(self, path: str, found: int, supported: int) -> None:
        self.path = path
        self.found = found
        self.supported = supported
        super().__init__(
            f"the database {path} has schema version {found}, but this DinoBot only knows "
            f"versions up to {supported}; upgrade DinoBot or point it at another database"
        )


EXIT_DATA = 1  # a file, folder or database that exists but cannot be used; Discord refused the token
EXIT_CONFIG = 2  # a setting that is missing, malformed, out of range or points at the wrong thing


class StartupError(Exception):
    """The bot cannot start as configured: one line for the operator, naming the key or file.

    Not a :class:`DinoBotError`: only the operator can act on it, so no member ever sees it.
    ``exit_code`` is :data:`EXIT_CONFIG` for a setting to fix and :data:`EXIT_DATA` for a file
    or folder to repair (the process's exit status, documented in the README).
    """

    def __init__(self, message: str, exit_code: int = EXIT_DATA) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def member_message(error: BaseException) -> str | None:
    """The text to show a member for an error raised on purpose, or None for anything else.

    Only deliberate errors qualify: the services' own (except :class:`StorageError`, which only
    the operator can fix) and an invalid name or prefix. Anything else, a stray ``ValueError``
    included, is a bug: the member gets an apology with an error id, never its text.
    """
    if isinstance(error, DatabaseUnavailable):
        return DatabaseUnavailable.MEMBER_TEXT
    if isinstance(error, StorageError):
        return None
    if isinstance(error, (DinoBotError, InvalidName)):
        return str(error)
    return None


def _human_duration(seconds: float) -> str:
    """'3 h 12 min', '5 min', 'less than a minute': precise enough for a chat reply."""
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"
