"""Which database the store opens: ``DINOBOT_DATABASE_URL`` parsed once, checked up front.

* unset (or empty): the embedded SQLite file in the data directory;
* ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3`` (three slashes,
  then the path, as SQLAlchemy writes it);
* ``postgresql://user:password@host:port/database`` (``postgres://`` too; query options such
  as ``?sslmode=require`` are passed to asyncpg).

A wrong URL is refused here with a message that shows a correct one, before anything opens.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Backend = Literal["sqlite", "postgresql"]
_POSTGRES_SCHEMES = ("postgresql", "postgres")
EXAMPLES = ("sqlite:///var/dinobot.sqlite3", "postgresql://dinobot:secret@db.example:5432/dinobot")


@dataclass(frozen=True)
class DatabaseTarget:
    """A database to open: an SQLite file, or a PostgreSQL DSN."""

    backend: Backend
    location: str  # the file path (sqlite) or the DSN as given (postgresql)

    @classmethod
    def sqlite(cls, path: str | Path) -> "DatabaseTarget":
        return cls("sqlite", str(path))

    @property
    def path(self) -> Path:
        if self.backend != "sqlite":
            raise AttributeError("a PostgreSQL database has no file path")
        return Path(self.location)

    @property
    def redacted(self) -> str:
        """For logs and messages: the location with any password replaced by ``***``."""
        if self.backend == "sqlite":
            return self.location
        parts = urlsplit(self.location)
        if parts.password is None:
            return self.location
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))

    def __str__(self) -> str:
        return self.redacted


def parse_database_url(raw: str | None, default_sqlite: Path) -> DatabaseTarget:
    """The target ``raw`` names; unset or blank is ``default_sqlite``. ``ValueError`` says why not."""
    text = (raw or "").strip()
    if not text:
        return DatabaseTarget.sqlite(default_sqlite)
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("sqlite", *_POSTGRES_SCHEMES):
        raise ValueError(f"must start with sqlite:/// or postgresql://, e.g. {EXAMPLES[0]} or {EXAMPLES[1]}")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ValueError(f"an SQLite URL is sqlite:/// followed by a file path (no host), e.g. {EXAMPLES[0]}")
        return DatabaseTarget.sqlite(Path(rest[1:]).expanduser())
    return DatabaseTarget("postgresql", _checked_postgres(text))


def _checked_postgres(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise ValueError(f"the port is not a number from 1 to 65535, e.g. {EXAMPLES[1]}") from None
    if port == 0:
        raise ValueError("the port must be 1-65535, not 0")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"names no host; write it as {EXAMPLES[1]}")
    if not parts.path.strip("/"):
        raise ValueError(f"names no database after the host; write it as {EXAMPLES[1]}")
    return url


def as_target(value: "str | Path | DatabaseTarget") -> DatabaseTarget:
    """Accept what callers naturally have: a target, a URL, or a plain SQLite path."""
    if isinstance(value, DatabaseTarget):
        return value
    if isinstance(value, str) and "://" in value:
        return parse_database_url(value, Path())
    return DatabaseTarget.sqlite(value)
