"""Configuration from the environment: defaults that work, errors that name the key."""
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from model import BASE_CHECKPOINT, train_path, val_path

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_work_without_any_settings():
    config = load_config(environ={})
    assert config.token is None and config.dev_guild_id is None
    assert config.data_dir == Path("var") and config.db_path == Path("var/dinobot.sqlite3")
    assert config.base_checkpoint == BASE_CHECKPOINT
    assert config.base_corpus == (train_path(), val_path()) == (ROOT / "data" / "dinos_train.txt",
                                                                ROOT / "data" / "dinos_val.txt")
    assert config.daily_limit == 20 and config.training.schedule_minutes == 60


def test_runtime_state_is_ignored_by_git_and_apart_from_the_corpus():
    """Nothing the bot writes may sit unignored beside the committed corpus."""
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "/var/" in ignored and "data/*" not in ignored
    assert sorted(p.name for p in (ROOT / "data").iterdir()) == ["README.md", "dinos_train.txt", "dinos_val.txt"]


def test_an_explicit_empty_base_corpus_turns_the_known_list_off(monkeypatch):
    monkeypatch.delenv("DINO_CORPUS_DIR", raising=False)
    assert load_config(environ={"DINOBOT_BASE_CORPUS": ""}).base_corpus == ()
    assert load_config(environ={"DINOBOT_BASE_CORPUS": "  "}).base_corpus == ()


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
