"""The SQLite schema as a list of forward migrations (PostgreSQL's are in ``pg_migrations``).

``MIGRATIONS[i]`` takes a database from ``PRAGMA user_version`` *i* to *i + 1*. The list is
append-only: a released migration is never edited, because databases in the wild have already
run it; a change is a new entry at the end. :class:`bot.store.Store` applies the missing ones at
open, each in its own transaction together with the new ``user_version``, so a crash mid-upgrade
leaves the database at the previous version, never half-migrated.

Conventions: times are unix seconds (REAL, UTC by definition); ids are Discord snowflakes
(INTEGER); booleans are INTEGER 0/1 with a CHECK; every enum-like TEXT column has a CHECK so a
bug in Python cannot store a status the rest of the code does not understand.
"""
from __future__ import annotations

import sqlite3

# v1: the four tables. Model versions are numbered per guild; a submission's
# first_trained_version and a version's parent_version point at a version of the *same* guild
# (composite foreign keys), so one server's rows can never reference another's.
_V1 = """
CREATE TABLE model_versions (
    id                INTEGER PRIMARY KEY,
    guild_id          INTEGER NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    checkpoint_path   TEXT,
    parent_version    INTEGER,
    names_used        INTEGER NOT NULL DEFAULT 0 CHECK (names_used >= 0),
    train_loss_before REAL,
    train_loss_after  REAL,
    val_loss_before   REAL,
    val_loss_after    REAL,
    trigger           TEXT NOT NULL CHECK (trigger IN ('schedule', 'admin')),
    requested_by      INTEGER,
    started_at        REAL NOT NULL,
    finished_at       REAL NOT NULL,
    duration_s        REAL NOT NULL CHECK (duration_s >= 0),
    status            TEXT NOT NULL CHECK (status IN ('promoted', 'discarded')),
    reason            TEXT NOT NULL DEFAULT '',
    CHECK (parent_version IS NULL OR parent_version < version),
    UNIQUE (guild_id, version),
    FOREIGN KEY (guild_id, parent_version) REFERENCES model_versions (guild_id, version)
);

CREATE TABLE submissions (
    id                    INTEGER PRIMARY KEY,
    guild_id              INTEGER NOT NULL,
    name                  TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    submitter_id          INTEGER NOT NULL,
    created_at            REAL NOT NULL,
    status                TEXT NOT NULL
                          CHECK (status IN ('approved', 'pending', 'rejected', 'removed')),
    status_changed_by     INTEGER,
    status_changed_at     REAL,
    first_trained_version INTEGER,
    UNIQUE (guild_id, name),
    FOREIGN KEY (guild_id, first_trained_version) REFERENCES model_versions (guild_id, version)
);

CREATE TABLE guild_settings (
    guild_id         INTEGER PRIMARY KEY,
    review_required  INTEGER NOT NULL DEFAULT 0 CHECK (review_required IN (0, 1)),
    schedule_enabled INTEGER NOT NULL DEFAULT 1 CHECK (schedule_enabled IN (0, 1)),
    updated_by       INTEGER,
    updated_at       REAL
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    created_at REAL NOT NULL
);
CREATE INDEX audit_log_guild_time ON audit_log (guild_id, id);
"""

# v2: indexes for the two hot queries. The daily limit counts one member's recent submissions
# on every submit; the scheduler asks each guild how many approved names are not yet trained on.
_V2 = """
CREATE INDEX submissions_limit ON submissions (guild_id, submitter_id, created_at);
CREATE INDEX submissions_untrained ON submissions (guild_id)
    WHERE status = 'approved' AND first_trained_version IS NULL;
"""

# v3: the /retrain replies being kept up to date, so a restart after a crash can tell each one
# that its fine-tune was interrupted. An interaction token lets its holder edit that one reply
# for 15 minutes and nothing else; rows are deleted once the reply shows its final state (and
# expired ones at the next start).
_V3 = """
CREATE TABLE live_replies (
    interaction_id INTEGER PRIMARY KEY,
    guild_id       INTEGER NOT NULL,
    application_id INTEGER NOT NULL,
    token          TEXT NOT NULL CHECK (length(token) BETWEEN 1 AND 500),
    message_id     INTEGER NOT NULL,
    created_at     REAL NOT NULL
);
"""

# v4: how strongly a server's fine-tunes pull its model toward its names (model/strength.py).
_V4 = """
ALTER TABLE guild_settings ADD COLUMN strength TEXT NOT NULL DEFAULT 'normal'
    CHECK (strength IN ('subtle', 'normal', 'strong'));
"""

# v5: members keeping generated names (one row per member and name: several members keeping
# the same name are votes, and the name itself is one submission), and a moderator's choice of
# the version that serves a server (``/models use``). ``newest_then`` is the newest promoted
# version when the choice was made: the choice holds until a newer version is promoted.
_V5 = """
CREATE TABLE keeps (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    member_id  INTEGER NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (guild_id, name, member_id),
    FOREIGN KEY (guild_id, name) REFERENCES submissions (guild_id, name)
);

CREATE TABLE served_versions (
    guild_id    INTEGER PRIMARY KEY,
    version     INTEGER CHECK (version IS NULL OR version >= 1),
    newest_then INTEGER,
    chosen_by   INTEGER NOT NULL,
    chosen_at   REAL NOT NULL,
    FOREIGN KEY (guild_id, version) REFERENCES model_versions (guild_id, version)
);
"""


# v6: what a cluster of bot processes needs. A promoted model's checkpoint bytes live next to
# its version row, so any process can serve any server and a promotion is one transaction
# (the row, the bytes, the names it trained on, the job that made it). Training jobs are rows:
# "at most one fine-tune per server at a time, cluster-wide" is the partial unique index plus
# a lease (holder, lease_expires_at) that a crashed process stops renewing.
_V6 = """
CREATE TABLE model_checkpoints (
    guild_id INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    data     BLOB NOT NULL CHECK (length(data) > 0),
    sha256   TEXT NOT NULL CHECK (length(sha256) = 64),
    PRIMARY KEY (guild_id, version),
    FOREIGN KEY (guild_id, version) REFERENCES model_versions (guild_id, version)
);

CREATE TABLE training_jobs (
    id               INTEGER PRIMARY KEY,
    guild_id         INTEGER NOT NULL,
    trigger          TEXT NOT NULL CHECK (trigger IN ('schedule', 'admin')),
    requested_by     INTEGER,
    requested_at     REAL NOT NULL,
    state            TEXT NOT NULL
                     CHECK (state IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    holder           TEXT,
    lease_expires_at REAL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    finished_at      REAL,
    reason           TEXT NOT NULL DEFAULT '',
    version          INTEGER,
    FOREIGN KEY (guild_id, version) REFERENCES model_versions (guild_id, version)
);
CREATE UNIQUE INDEX training_jobs_one_active ON training_jobs (guild_id)
    WHERE state IN ('queued', 'running');
"""

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5, _V6]
SCHEMA_VERSION = len(MIGRATIONS)


def split_statements(script: str) -> list[str]:
    """Split a migration script into complete statements.

    The store runs a migration statement by statement inside its own ``BEGIN IMMEDIATE``
    rather than with ``executescript``, which commits any open transaction first and so could
    not be paired atomically with the ``user_version`` bump. ``sqlite3.complete_statement``
    decides where a statement ends, so a semicolon inside a trigger body or a string is safe.
    """
    statements: list[str] = []
    pending = ""
    for chunk in script.split(";"):
        pending += chunk + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n\t;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending!r}")
    return statements
