"""DinoBot's database: names, model versions and their checkpoints, settings, jobs, the audit log.

:class:`Store` opens one :class:`~bot.services.store.db.Database` (an SQLite file, or PostgreSQL
when ``DINOBOT_DATABASE_URL`` says so) and hands it to one part per table group, so each part is
small and a caller says which it means: ``store.names.submit``, ``store.versions.record``,
``store.settings.update``, ``store.jobs.claim``, ``store.audit.recent``,
``store.live_replies.remember``, ``store.keeps.keep``, ``store.serving.choose``. The parts write
their SQL once; the database runs it on either backend (see :mod:`bot.services.store.db`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from bot.services.records import (
    AuditEntry,
    GuildSettings,
    JobRecord,
    JobState,
    LiveReply,
    ModelVersion,
    Status,
    Submission,
    Trigger,
    VersionStatus,
)
from bot.services.store.audit import AuditLog
from bot.services.store.db import Database, open_database
from bot.services.store.jobs import JobStore, Lease, LeaseLost
from bot.services.store.keeps import KeepStore
from bot.services.store.live_replies import LiveReplies
from bot.services.store.serving import ServingStore
from bot.services.store.settings import SettingsStore
from bot.services.store.submissions import DAY_SECONDS, SubmissionStore
from bot.services.store.target import DatabaseTarget, parse_database_url
from bot.services.store.versions import VersionStore

__all__ = ["DAY_SECONDS", "AuditEntry", "DatabaseTarget", "GuildSettings", "JobRecord", "JobState", "Lease",
           "LeaseLost", "LiveReply", "ModelVersion", "Status", "Store", "Submission", "Trigger", "VersionStatus",
           "parse_database_url"]


class Store:
    """Async access to DinoBot's database. Create with ``await Store.open(target)``."""

    def __init__(self, db: Database, *, daily_limit: int | None, known_names: Iterable[str]) -> None:
        self.db = db
        self.names = SubmissionStore(db, daily_limit=daily_limit, known_names=known_names)
        self.versions = VersionStore(db)
        self.settings = SettingsStore(db)
        self.jobs = JobStore(db)
        self.audit = AuditLog(db)
        self.live_replies = LiveReplies(db)
        self.keeps = KeepStore(db, self.names)
        self.serving = ServingStore(db)

    @classmethod
    async def open(cls, target: "str | Path | DatabaseTarget", *, daily_limit: int | None = 20,
                   known_names: Iterable[str] = frozenset(), synchronous: str = "FULL",
                   clock: Callable[[], float] = time.time, pool_size: int = 10) -> "Store":
        """Open (creating if needed) the database, migrated to the current schema.

        ``target`` is an SQLite path, a ``sqlite:///`` or ``postgresql://`` URL, or a
        :class:`DatabaseTarget`. ``daily_limit`` is submissions per member per guild per rolling
        24 h (None: no limit). ``known_names`` are base-corpus names, refused as already known
        dinosaurs. ``synchronous`` is SQLite's; ``pool_size`` PostgreSQL's connections.
        """
        db = await open_database(target, synchronous=synchronous, clock=clock, pool_size=pool_size)
        return cls(db, daily_limit=daily_limit, known_names=known_names)

    @property
    def target(self) -> DatabaseTarget:
        return self.db.target

    @property
    def path(self) -> Path:
        """The SQLite file (AttributeError on PostgreSQL, which has none)."""
        return self.db.target.path

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
