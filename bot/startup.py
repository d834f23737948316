"""Start-up checks: every local resource is tried before the bot talks to Discord.

Each helper opens or reads one thing the bot needs and turns the ways it can fail into a
:class:`~bot.errors.StartupError`: one line that names the setting (or the file) and what to do,
with the exit status the README documents (2: fix a setting; 1: repair a file or folder). An
unexpected exception is left alone: it is a bug, and ``bot/__main__.py`` logs its traceback.

:func:`wait_for_discord` then retries an unreachable Discord with exponential backoff, one log
line per attempt, so a network blip at boot needs no human.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
from pathlib import Path
from typing import Callable, Iterable

import aiohttp

from bot.errors import EXIT_CONFIG, DatabaseUnavailable, SchemaTooNew, StartupError, StorageError
from bot.services.registry import ModelRegistry
from bot.services.store import DatabaseTarget, Store
from model import CheckpointError, CorpusError, read_names

log = logging.getLogger(__name__)

DATA_KEY = "DINOBOT_DATA_DIR"
DATABASE_KEY = "DINOBOT_DATABASE_URL"
CHECKPOINT_KEY = "DINOBOT_BASE_CHECKPOINT"
CORPUS_KEY = "DINOBOT_BASE_CORPUS"
VALIDATION_KEY = "DINOBOT_BASE_VALIDATION"

#: Backoff between attempts to reach Discord at start: 1 s, doubling, at most a minute.
FIRST_RETRY, MAX_RETRY = 1.0, 60.0
PROBE_TIMEOUT = 10.0


# ---------------------------------------------------------------------- local resources


def prepare_data_dir(path: Path) -> None:
    """Create the data folder if needed and prove it is writable (before any log file opens).

    ``os.access`` is not enough: it says yes to root on a read-only mount. So a small file is
    really created and removed.
    """
    path = path.absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StartupError(f"{DATA_KEY}: {path} cannot be a folder (it, or a folder above it, is a file); "
                           f"point {DATA_KEY} at a folder", EXIT_CONFIG) from None
    except OSError as exc:
        raise StartupError(f"{DATA_KEY}: cannot create the folder {path} ({exc.strerror}); create it, "
                           f"or point {DATA_KEY} elsewhere") from None
    probe = path / f".write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"DinoBot checks that it can write here\n")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"{DATA_KEY}: cannot write in {path} ({exc.strerror}); make it writable for "
                           f"the user running DinoBot, or point {DATA_KEY} at another folder") from None


def read_corpus(paths: Iterable[Path], key: str = CORPUS_KEY) -> list[str]:
    """Every name of every file of a names setting (blocking; run in a thread).

    ``key`` is the setting the files came from: the base corpus (the known dinosaurs) or the
    base validation names; a bad line is reported under it.
    """
    try:
        return [name for path in paths for name in read_names(path)]
    except CorpusError as exc:
        empty = "no list of known dinosaurs" if key == CORPUS_KEY else "judge on the base model's samples"
        raise StartupError(f"{key}: {_clause(exc)}; fix the file, or set {key} to other "
                           f"files (empty: {empty})") from None


async def open_store(target: DatabaseTarget, *, daily_limit: int, known_names: frozenset[str]) -> Store:
    """The database, migrated; refused if it is damaged, unwritable, unreachable or from a newer DinoBot."""
    key = DATA_KEY if target.backend == "sqlite" else DATABASE_KEY
    try:
        return await Store.open(target, daily_limit=daily_limit, known_names=known_names)
    except SchemaTooNew as exc:
        raise StartupError(f"{key}: {exc}") from None
    except DatabaseUnavailable as exc:
        raise StartupError(f"{DATABASE_KEY}: {_clause(exc)}; start PostgreSQL or fix the address") from None
    except StorageError as exc:
        if target.backend == "postgresql":
            raise StartupError(f"{DATABASE_KEY}: {_clause(exc)}") from None
        raise StartupError(f"{DATA_KEY}: cannot use the database {target.redacted} ({_clause(exc)}); restore it "
                           "from a backup, or move it aside to start with an empty one") from None
    except (sqlite3.Error, OSError) as exc:
        raise StartupError(f"{key}: cannot use the database {target.redacted} ({_clause(exc)}); restore it "
                           "from a backup, or move it aside to start with an empty one") from None


async def start_registry(registry: ModelRegistry) -> None:
    """Load the base model, and move an older DinoBot's checkpoint files into the database."""
    try:
        await registry.start()
    except CheckpointError as exc:
        raise StartupError(f"{CHECKPOINT_KEY}: {_clause(exc)}; point {CHECKPOINT_KEY} at a good "
                           "checkpoint (python -m model train --out FILE makes one)") from None
    except StorageError as exc:
        raise StartupError(f"{DATABASE_KEY}: {_clause(exc)}") from None
    except OSError as exc:
        raise StartupError(f"{DATA_KEY}: cannot use the models folder {registry.legacy_dir} "
                           f"({exc.strerror or exc})") from None


def _clause(exc: BaseException) -> str:
    """An exception's text as one clause: one line, no full stop of its own."""
    return " ".join(str(exc).split()).rstrip(".")


# ---------------------------------------------------------------------- reaching Discord


class TokenRefused(Exception):
    """Discord answered 401: the token is wrong (no retry can fix that)."""


async def wait_for_discord(api_base: str, token: str, user_agent: str, *,
                           sleep: Callable[[float], object] = asyncio.sleep) -> int:
    """Return once Discord answers the token (``GET /users/@me``); the attempts it took.

    A connection error, a timeout, a 5xx or a 429 is retried after 1, 2, 4 … 60 s (with a
    little jitter), each failure logged in one line. A 401 raises :class:`TokenRefused`; any
    other answer means Discord is there, and discord.py's own login reports it.
    """
    headers = {"Authorization": f"Bot {token}", "User-Agent": user_agent}
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)
    attempt = 0
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            attempt += 1
            problem = await _probe(session, f"{api_base}/users/@me", headers)
            if problem is None:
                return attempt
            delay = min(MAX_RETRY, FIRST_RETRY * 2 ** (attempt - 1)) * random.uniform(1.0, 1.2)
            log.warning("Discord is not reachable (%s); attempt %d failed, trying again in %.0f s",
                        problem, attempt, delay)
            await sleep(delay)


async def _probe(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str | None:
    """None when Discord answered; else why it did not, in a few words."""
    try:
        async with session.get(url, headers=headers) as response:
            status = response.status
    except asyncio.TimeoutError:
        return f"no answer within {PROBE_TIMEOUT:.0f} s"
    except (aiohttp.ClientError, OSError) as exc:
        return _clause(exc) or type(exc).__name__
    if status == 401:
        raise TokenRefused()
    if status == 429 or status >= 500:
        return f"HTTP {status}"
    return None
