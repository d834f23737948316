"""Configuration from the environment: defaults that work, errors that name the key."""
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from model import BASE_CHECKPOINT

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_work_without_any_settings():
    config = load_config(environ={})
    assert config.token is None and config.dev_guild_id is None
    assert config.data_dir == Path("data") and config.db_path == Path("data/dinobot.sqlite3")
    assert config.base_checkpoint == BASE_CHECKPOINT and config.base_corpus == ()
    assert config.daily_limit == 20 and config.training.schedule_minutes == 60


def test_every_key_is_read(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("raptor\n")
    config = load_config(environ={
        "DISCORD_TOKEN": " abc ", "DEV_GUILD_ID": "123", "DINOBOT_DATA_DIR": str(tmp_path),
        "DINOBOT_BASE_CORPUS": str(names), "DINOBOT_DAILY_LIMIT": "3", "DINOBOT_GENERATE_PER_30S": "9",
        "DINOBOT_SUBMIT_PER_MINUTE": "2", "DINOBOT_FINETUNE_EVERY_MINUTES": "0", "DINOBOT_FINETUNE_MIN_NEW": "7",
        "DINOBOT_FINETUNE_MIN_NAMES": "11", "DINOBOT_PROMOTE_TOLERANCE": "0.1", "DINOBOT_MAX_CACHED_MODELS": "2",
        "DINOBOT_LOG_LEVEL": "debug",
    })
    assert config.token == "abc" and config.dev_guild_id == 123 and config.data_dir == tmp_path
    assert config.base_corpus == (names,) and config.daily_limit == 3
    assert config.generate_rate == (9, 30.0) and config.submit_rate == (2, 60.0)
    t = config.training
    assert (t.schedule_minutes, t.min_new_names, t.min_names, t.tolerance, t.max_cached_models) == (0, 7, 11, 0.1, 2)
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize("key, value, fragment", [
    ("DINOBOT_DAILY_LIMIT", "abc", "DINOBOT_DAILY_LIMIT must be a whole number"),
    ("DINOBOT_DAILY_LIMIT", "0", "at least 1"),
    ("DEV_GUILD_ID", "-5", "DEV_GUILD_ID must be at least 1"),
    ("DINOBOT_PROMOTE_TOLERANCE", "lots", "must be a number"),
    ("DINOBOT_LOG_LEVEL", "LOUD", "one of DEBUG"),
    ("DINOBOT_BASE_CORPUS", "/no/such/file.txt", "do not exist"),
])
def test_bad_values_name_the_key(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(environ={key: value})


def test_env_example_documents_every_key_the_bot_reads():
    example = (ROOT / ".env.example").read_text()
    source = (ROOT / "bot" / "config.py").read_text()
    import re
    keys = set(re.findall(r'"((?:DINOBOT|DISCORD|DEV)_[A-Z0-9_]+)"', source))
    assert keys and all(key in example for key in keys), keys - {k for k in keys if k in example}


def test_dotenv_file_is_read_but_never_overrides_the_environment(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-file\nDINOBOT_DAILY_LIMIT=4\n")
    monkeypatch.setenv("DINOBOT_DAILY_LIMIT", "6")
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    config = load_config(env_file)
    assert config.token == "from-file" and config.daily_limit == 6
