"""The plain records the services hand to the cogs: enums and frozen row dataclasses.

Kept apart from the store so a cog can name a ``Status`` without importing database code, and so
a second storage backend returns exactly the same types.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class TextEnum(str, enum.Enum):
    """A ``str`` enum that prints as its value on every Python version (3.12 changed format())."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Status(TextEnum):
    """A submission's status. A ``str`` subclass, so ``Status.APPROVED == "approved"``."""

    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"
    REMOVED = "removed"


class Trigger(TextEnum):
    """What started a fine-tune."""

    SCHEDULE = "schedule"
    ADMIN = "admin"


class VersionStatus(TextEnum):
    """What became of a fine-tuned model: served, or thrown away (with a reason)."""

    PROMOTED = "promoted"
    DISCARDED = "discarded"


@dataclass(frozen=True, slots=True)
class Submission:
    """One submitted name, as stored."""

    id: int
    guild_id: int
    name: str
    submitter_id: int
    created_at: float
    status: Status
    status_changed_by: int | None = None
    status_changed_at: float | None = None
    first_trained_version: int | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One fine-tune attempt for one guild, promoted or discarded."""

    guild_id: int
    version: int
    checkpoint_path: str | None
    parent_version: int | None
    names_used: int
    train_loss_before: float | None
    train_loss_after: float | None
    val_loss_before: float | None
    val_loss_after: float | None
    trigger: Trigger
    requested_by: int | None
    started_at: float
    finished_at: float
    duration_s: float
    status: VersionStatus
    reason: str


class JobState(TextEnum):
    """Where a fine-tune job stands in the database (every process of a cluster sees the same)."""

    QUEUED = "queued"
    RUNNING = "running"  # claimed by a process under a lease it keeps renewing
    DONE = "done"  # judged: a version was recorded, promoted or discarded
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One requested fine-tune as stored: who asked, its state, and who holds it until when."""

    id: int
    guild_id: int
    trigger: Trigger
    requested_by: int | None
    requested_at: float
    state: JobState
    holder: str | None  # the process running it (state running)
    lease_expires_at: float | None  # unix seconds; a lease not renewed by then may be taken over
    attempts: int  # times a process claimed it
    finished_at: float | None
    reason: str
    version: int | None  # the version it recorded (state done)


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """Per-guild switches; a guild that never changed anything gets the defaults."""

    guild_id: int
    review_required: bool = False
    schedule_enabled: bool = True
    strength: str = "normal"  # subtle, normal or strong: how visible its fine-tunes are


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One admin action: who did what, when, with a JSON-able ``details`` dict."""

    id: int
    guild_id: int
    actor_id: int
    action: str
    details: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What ``/dinoinfo`` says about the model serving a server, read without touching weights."""

    version: int | None  # None: the shipped base model
    network: str  # e.g. "3 × LSTM-64 + 6-gram"
    val_loss: float | None  # nats per letter on the validation names it was judged on
    trained_at: float | None  # unix seconds; None when unknown
    trained_on: str  # e.g. "1235 dinosaur names" or "48 names from this server"


@dataclass(frozen=True, slots=True)
class LiveReply:
    """A reply the bot keeps editing (a /retrain's progress), and what it needs to edit it again
    after a restart: the interaction's token is valid 15 minutes from ``created_at``."""

    interaction_id: int
    guild_id: int
    application_id: int
    token: str
    message_id: int
    created_at: float  # unix seconds the interaction was created


@dataclass(frozen=True, slots=True)
class Kept:
    """What keeping a name did: the submission it is (new, or the one already there) and its votes."""

    submission: Submission
    keeps: int  # members who have kept this name in this server, the new keep included
    first_keep: bool  # True: this keep added the name to the server (a submission was created)
    first_by: int  # the member who kept it first
    first_at: float


@dataclass(frozen=True, slots=True)
class FavouriteName:
    """One line of ``/names top``: an approved name, how many kept it, who kept it first and when."""

    name: str
    keeps: int
    first_by: int
    first_at: float


@dataclass(frozen=True, slots=True)
class ServedChoice:
    """A moderator's choice of which version serves a server (``/models use``).

    It holds until a version newer than ``newest_then`` is promoted: a later fine-tune (which
    starts from the chosen version) then serves as usual.
    """

    guild_id: int
    version: int | None  # None: the shipped base model
    newest_then: int | None  # the newest promoted version when the choice was made
    chosen_by: int
    chosen_at: float
