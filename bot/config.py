"""The bot's configuration, read once from the environment (and a ``.env`` file).

Every key has a default that works, except the token. ``.env.example`` documents each key; the
README's configuration table is generated from the same list in spirit: keep the three in step.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

from bot.services.store.target import DatabaseTarget, parse_database_url
from bot.services.training.settings import TrainingSettings
from bot.sharding import ShardPlan, parse_shard_ids
from model import BASE_CHECKPOINT, train_path, val_path

TOKEN_HELP = """\
DinoBot needs a Discord bot token, and none was found.

  1. Open https://discord.com/developers/applications and click "New Application".
  2. In "Bot", click "Reset Token" and copy the token.
  3. Copy .env.example to .env and set DISCORD_TOKEN=<the token> (or export DISCORD_TOKEN).
  4. Run the bot again; it logs an invite link to add it to your server.

The README's "Run your own DinoBot" section walks through it step by step."""


class ConfigError(ValueError):
    """A setting that is present but unusable; the message names the key and the fix."""


#: The inclusive range of every numeric setting. The README's configuration table and
#: ``.env.example`` state the same ranges (``tests/bot/test_config.py`` checks that they do).
#: Each bound keeps a value meaningful: no overflow in SQLite's 64-bit integers, no NaN that
#: makes every comparison False, no scheduler waking every few milliseconds.
SETTING_RANGES: dict[str, tuple[int, int]] = {
    "DINOBOT_DAILY_LIMIT": (1, 10_000),
    "DINOBOT_GENERATE_PER_30S": (1, 1_000),
    "DINOBOT_SUBMIT_PER_MINUTE": (1, 1_000),
    "DINOBOT_FINETUNE_EVERY_MINUTES": (1, 10_080),  # a week; 0 switches the scheduler off
    "DINOBOT_FINETUNE_MIN_NEW": (1, 100_000),
    "DINOBOT_FINETUNE_MIN_NAMES": (3, 100_000),  # 2 held out for validation + 1 to train on
    "DINOBOT_PROMOTE_TOLERANCE": (-1, 1),  # nats per letter; the base model scores about 1.5
    "DINOBOT_MAX_CACHED_MODELS": (0, 1_000),
    "DINOBOT_FINETUNE_LEASE_SECONDS": (1, 3_600),
    "DINOBOT_SHARD_COUNT": (1, 100_000),
}
MAX_SNOWFLAKE = 2**63 - 1


@dataclass(frozen=True)
class Config:
    token: str | None
    dev_guild_id: int | None = None
    data_dir: Path = Path("var")
    base_checkpoint: Path = BASE_CHECKPOINT
    base_corpus: tuple[Path, ...] = ()
    base_validation: tuple[Path, ...] = ()  # names fine-tunes are judged on, never replayed
    daily_limit: int = 20
    generate_rate: tuple[int, float] = (5, 30.0)  # uses per seconds, per user
    submit_rate: tuple[int, float] = (5, 60.0)
    log_level: str = "INFO"
    training: TrainingSettings = field(default_factory=TrainingSettings)
    # Running at scale: the shared database, and this process's Discord shards.
    database_url: str | None = None  # None: the SQLite file in data_dir
    shards: ShardPlan = field(default_factory=ShardPlan)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "dinobot.sqlite3"

    @property
    def database(self) -> DatabaseTarget:
        """Where the store lives: ``DINOBOT_DATABASE_URL``, else the SQLite file in the data folder."""
        return parse_database_url(self.database_url, self.db_path)

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "dinobot.log"

    @property
    def sync_state_file(self) -> Path:
        return self.data_dir / "command-sync.json"


def load_config(env_file: str | os.PathLike | None = ".env", environ: dict[str, str] | None = None) -> Config:
    """Build the config from ``environ`` (default: the process environment after ``.env``).

    A ``.env`` file never overrides variables already set in the environment.
    """
    if environ is None:
        if env_file is not None:
            load_dotenv(env_file, override=False)
        environ = dict(os.environ)
    get = _Reader(environ)
    training = TrainingSettings(
        min_names=get.integer("DINOBOT_FINETUNE_MIN_NAMES", 20),
        min_new_names=get.integer("DINOBOT_FINETUNE_MIN_NEW", 20),
        schedule_minutes=get.number("DINOBOT_FINETUNE_EVERY_MINUTES", 60.0, zero_means_off=True),
        tolerance=get.number("DINOBOT_PROMOTE_TOLERANCE", None),  # unset: each server's strength's own
        max_cached_models=get.integer("DINOBOT_MAX_CACHED_MODELS", 8),
        lease_seconds=get.number("DINOBOT_FINETUNE_LEASE_SECONDS", 60.0),
    )
    return Config(
        token=environ.get("DISCORD_TOKEN", "").strip() or None,
        dev_guild_id=get.snowflake("DEV_GUILD_ID"),
        data_dir=get.folder("DINOBOT_DATA_DIR", "var"),
        base_checkpoint=get.file("DINOBOT_BASE_CHECKPOINT", BASE_CHECKPOINT),
        base_corpus=get.paths("DINOBOT_BASE_CORPUS", default=(train_path(), val_path())),
        base_validation=get.paths("DINOBOT_BASE_VALIDATION", default=(val_path(),)),
        daily_limit=get.integer("DINOBOT_DAILY_LIMIT", 20),
        generate_rate=(get.integer("DINOBOT_GENERATE_PER_30S", 5), 30.0),
        submit_rate=(get.integer("DINOBOT_SUBMIT_PER_MINUTE", 5), 60.0),
        log_level=get.choice("DINOBOT_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        training=training,
        database_url=get.database_url("DINOBOT_DATABASE_URL"),
        shards=get.shards("DINOBOT_SHARD_COUNT", "DINOBOT_SHARD_IDS"),
    )


class _Reader:
    """Typed access to environment strings with errors that name the key."""

    def __init__(self, environ: dict[str, str]):
        self.environ = environ

    def _raw(self, key: str) -> str | None:
        value = self.environ.get(key, "").strip()
        return value or None

    def integer(self, key: str, default: int) -> int:
        """A whole number within ``SETTING_RANGES[key]``."""
        raw = self._raw(key)
        if raw is None:
            return default
        low, high = SETTING_RANGES[key]
        try:
            value = int(raw)
        except ValueError:  # also a number too long to convert (Python refuses > 4300 digits)
            value = None
        if value is None or not low <= value <= high:
            raise ConfigError(f"{key} must be a whole number from {low:,} to {high:,}, not {raw!r}")
        return value

    def number(self, key: str, default: float | None, *, zero_means_off: bool = False) -> float | None:
        """A finite number within ``SETTING_RANGES[key]`` (or exactly 0 when that means off)."""
        raw = self._raw(key)
        if raw is None:
            return default
        low, high = SETTING_RANGES[key]
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if zero_means_off and value == 0:
            return 0.0
        if not (math.isfinite(value) and low <= value <= high):  # NaN fails every comparison: test it
            off = "0 (off) or " if zero_means_off else ""
            raise ConfigError(f"{key} must be {off}a number from {low:,} to {high:,}, not {raw!r}")
        return value

    def snowflake(self, key: str) -> int | None:
        """A Discord id: a whole number that fits Discord's 64-bit snowflakes."""
        raw = self._raw(key)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not 1 <= value <= MAX_SNOWFLAKE:
            raise ConfigError(f"{key} must be a server id (Discord → Settings → Advanced → Developer Mode, "
                              f"then right-click the server → Copy Server ID), not {raw!r}")
        return value

    def folder(self, key: str, default: str) -> Path:
        """A folder that may not exist yet, but must not be something else."""
        path = Path(self._raw(key) or default).expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{key}: {path} is a file, not a folder; point {key} at a folder "
                              "(it is created if missing)")
        return path

    def file(self, key: str, default: Path) -> Path:
        """A file that must exist when the key is set (the default is checked when it is loaded)."""
        raw = self._raw(key)
        if raw is None:
            return default
        path = Path(raw).expanduser()
        if not path.is_file():
            raise ConfigError(f"{key} names a file that does not exist: {path}")
        return path

    def database_url(self, key: str) -> str | None:
        """A ``sqlite:///`` or ``postgresql://`` URL, checked now (a password is never echoed)."""
        raw = self._raw(key)
        try:
            parse_database_url(raw, Path())
        except ValueError as exc:
            shown = re.sub(r":[^:@/]*@", ":***@", raw or "")
            raise ConfigError(f"{key} {exc} (it is {shown!r})") from None
        return raw

    def shards(self, count_key: str, ids_key: str) -> ShardPlan:
        """The shard count and this process's shards (``0-3``, ``0,2``)."""
        count = self.integer(count_key, None)  # type: ignore[arg-type]
        raw = self._raw(ids_key)
        try:
            return ShardPlan(count, None if raw is None else parse_shard_ids(raw))
        except ValueError as exc:
            message = str(exc) if str(exc).startswith("DINOBOT_") else f"{ids_key} {exc}, not {raw!r}"
            raise ConfigError(message) from None

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._raw(key)
        if raw is None:
            return default
        if raw.upper() not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {raw!r}")
        return raw.upper()

    def paths(self, key: str, default: tuple[Path, ...]) -> tuple[Path, ...]:
        """``:``-separated files; unset gives ``default``, set but empty gives none at all."""
        if key not in self.environ:
            return default
        raw = self._raw(key)
        if raw is None:
            return ()
        paths = tuple(Path(p.strip()).expanduser() for p in raw.split(os.pathsep) if p.strip())
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ConfigError(f"{key} names files that do not exist: {', '.join(missing)}")
        return paths
