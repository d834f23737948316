"""DinoBot's database: names, model versions, settings and the audit log.

:class:`Store` opens one :class:`~bot.services.store.db.Database` and hands it to one part per
table group, so each part is small and a caller says which it means: ``store.names.submit``,
``store.versions.record``, ``store.settings.update``, ``store.audit.recent``,
``store.live_replies.remember``, ``store.keeps.keep``, ``store.serving.choose``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

from bot.services.records import (
    AuditEntry,
    GuildSettings,
    LiveReply,
    ModelVersion,
    Status,
    Submission,
    Trigger,
    VersionStatus,
)
from bot.services.store.audit import AuditLog
from bot.services.store.db import Database, Synchronous
from bot.services.store.keeps import KeepStore
from bot.services.store.live_replies import LiveReplies
from bot.services.store.serving import ServingStore
from bot.services.store.settings import SettingsStore
from bot.services.store.submissions import DAY_SECONDS, SubmissionStore
from bot.services.store.versions import VersionStore

__all__ = ["DAY_SECONDS", "AuditEntry", "GuildSettings", "LiveReply", "ModelVersion", "Status", "Store",
           "Submission", "Trigger", "VersionStatus"]


class Store:
    """Async access to DinoBot's database. Create with ``await Store.open(path)``."""

    def __init__(self, db: Database, *, daily_limit: int | None, known_names: Iterable[str]) -> None:
        self.db = db
        self.names = SubmissionStore(db, daily_limit=daily_limit, known_names=known_names)
        self.versions = VersionStore(db)
        self.settings = SettingsStore(db)
        self.audit = AuditLog(db)
        self.live_replies = LiveReplies(db)
        self.keeps = KeepStore(db, self.names)
        self.serving = ServingStore(db)

    @classmethod
    async def open(cls, path: str | Path, *, daily_limit: int | None = 20,
                   known_names: Iterable[str] = frozenset(), synchronous: Synchronous = "FULL",
                   clock: Callable[[], float] = time.time) -> "Store":
        """Open (creating if needed) the database at ``path``, migrated to the current schema.

        ``daily_limit`` is submissions per member per guild per rolling 24 h (None: no limit).
        ``known_names`` are base-corpus names, refused as already known dinosaurs.
        """
        db = await Database.open(path, synchronous=synchronous, clock=clock)
        return cls(db, daily_limit=daily_limit, known_names=known_names)

    @property
    def path(self) -> Path:
        return self.db.path

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
