"""The bot's configuration, read once from the environment (and a ``.env`` file).

Every key has a default that works, except the token. ``.env.example`` documents each key; the
README's configuration table is generated from the same list in spirit: keep the three in step.
"""
from __future__ import annotations

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


@dataclass(frozen=True)
class Config:
    token: str | None
    dev_guild_id: int | None = None
    data_dir: Path = Path("var")
    base_checkpoint: Path = BASE_CHECKPOINT
    base_corpus: tuple[Path, ...] = ()
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
    schedule = get.number("DINOBOT_FINETUNE_EVERY_MINUTES", 60.0, minimum=0)
    training = TrainingSettings(
        min_names=get.integer("DINOBOT_FINETUNE_MIN_NAMES", 20, minimum=3),
        min_new_names=get.integer("DINOBOT_FINETUNE_MIN_NEW", 20, minimum=1),
        schedule_minutes=schedule,
        tolerance=get.number("DINOBOT_PROMOTE_TOLERANCE", 0.05),
        max_cached_models=get.integer("DINOBOT_MAX_CACHED_MODELS", 8, minimum=0),
        lease_seconds=get.number("DINOBOT_FINETUNE_LEASE_SECONDS", 60.0, minimum=1.0),
    )
    data_dir = Path(get.text("DINOBOT_DATA_DIR", "var")).expanduser()
    database_url = get.text("DINOBOT_DATABASE_URL", "") or None
    try:
        parse_database_url(database_url, data_dir)
    except ValueError as exc:
        shown = re.sub(r":[^:@/]*@", ":***@", database_url or "")  # never echo a password
        raise ConfigError(f"DINOBOT_DATABASE_URL {exc} (it is {shown!r})") from None
    shard_ids = get.text("DINOBOT_SHARD_IDS", "") or None
    try:
        shards = ShardPlan(get.integer("DINOBOT_SHARD_COUNT", None, minimum=1),
                           None if shard_ids is None else parse_shard_ids(shard_ids))
    except ValueError as exc:
        message = str(exc) if str(exc).startswith("DINOBOT_") else f"DINOBOT_SHARD_IDS {exc}, not {shard_ids!r}"
        raise ConfigError(message) from None
    return Config(
        token=environ.get("DISCORD_TOKEN", "").strip() or None,
        dev_guild_id=get.integer("DEV_GUILD_ID", None, minimum=1),
        data_dir=data_dir,
        base_checkpoint=Path(environ.get("DINOBOT_BASE_CHECKPOINT", str(BASE_CHECKPOINT))).expanduser(),
        base_corpus=get.paths("DINOBOT_BASE_CORPUS", default=(train_path(), val_path())),
        daily_limit=get.integer("DINOBOT_DAILY_LIMIT", 20, minimum=1),
        generate_rate=(get.integer("DINOBOT_GENERATE_PER_30S", 5, minimum=1), 30.0),
        submit_rate=(get.integer("DINOBOT_SUBMIT_PER_MINUTE", 5, minimum=1), 60.0),
        log_level=get.choice("DINOBOT_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        training=training,
        database_url=database_url,
        shards=shards,
    )


class _Reader:
    """Typed access to environment strings with errors that name the key."""

    def __init__(self, environ: dict[str, str]):
        self.environ = environ

    def _raw(self, key: str) -> str | None:
        value = self.environ.get(key, "").strip()
        return value or None

    def integer(self, key: str, default: int | None, minimum: int) -> int | None:
        raw = self._raw(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, not {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{key} must be at least {minimum}, not {value}")
        return value

    def number(self, key: str, default: float, minimum: float | None = None) -> float:
        raw = self._raw(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a number, not {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{key} must be at least {minimum}, not {value}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self._raw(key)
        if raw is None:
            return default
        if raw.upper() not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {raw!r}")
        return raw.upper()

    def text(self, key: str, default: str) -> str:
        return self._raw(key) or default

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
