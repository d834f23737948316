"""Configuration from the environment: defaults that work, errors that name the key."""
from pathlib import Path

import pytest

from bot.config import SETTING_RANGES, ConfigError, load_config
from model import BASE_CHECKPOINT, train_path, val_path

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_work_without_any_settings():
    config = load_config(environ={})
    assert config.token is None and config.dev_guild_id is None
    assert config.data_dir == Path("var") and config.db_path == Path("var/dinobot.sqlite3")
    assert config.base_checkpoint == BASE_CHECKPOINT
    assert config.base_corpus == (train_path(), val_path()) == (ROOT / "data" / "dinos_train.txt",
                                                                ROOT / "data" / "dinos_val.txt")
    assert config.base_validation == (val_path(),)  # fine-tunes are judged on the base model's val names
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
    assert load_config(environ={"DINOBOT_BASE_VALIDATION": ""}).base_validation == ()  # judged on samples


def test_every_key_is_read(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("raptor\n")
    config = load_config(environ={
        "DISCORD_TOKEN": " abc ", "DEV_GUILD_ID": "123", "DINOBOT_DATA_DIR": str(tmp_path),
        "DINOBOT_BASE_CORPUS": str(names), "DINOBOT_DAILY_LIMIT": "3", "DINOBOT_GENERATE_PER_30S": "9",
        "DINOBOT_SUBMIT_PER_MINUTE": "2", "DINOBOT_FINETUNE_EVERY_MINUTES": "0", "DINOBOT_FINETUNE_MIN_NEW": "7",
        "DINOBOT_FINETUNE_MIN_NAMES": "11", "DINOBOT_PROMOTE_TOLERANCE": "0.1", "DINOBOT_MAX_CACHED_MODELS": "2",
        "DINOBOT_LOG_LEVEL": "debug", "DINOBOT_BASE_VALIDATION": str(names),
    })
    assert config.token == "abc" and config.dev_guild_id == 123 and config.data_dir == tmp_path
    assert config.base_corpus == (names,) == config.base_validation and config.daily_limit == 3
    assert config.generate_rate == (9, 30.0) and config.submit_rate == (2, 60.0)
    t = config.training
    assert (t.schedule_minutes, t.min_new_names, t.min_names, t.tolerance, t.max_cached_models) == (0, 7, 11, 0.1, 2)
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize("key, value, fragment", [
    ("DINOBOT_DAILY_LIMIT", "abc", "DINOBOT_DAILY_LIMIT must be a whole number"),
    ("DINOBOT_DAILY_LIMIT", "0", "DINOBOT_DAILY_LIMIT must be a whole number from 1 to 10,000, not '0'"),
    ("DEV_GUILD_ID", "-5", "DEV_GUILD_ID must be a server id"),
    ("DINOBOT_PROMOTE_TOLERANCE", "lots", "must be a number"),
    ("DINOBOT_LOG_LEVEL", "LOUD", "one of DEBUG"),
    ("DINOBOT_BASE_CORPUS", "/no/such/file.txt", "do not exist"),
    ("DINOBOT_BASE_VALIDATION", "/no/such/val.txt", "do not exist"),
])
def test_bad_values_name_the_key(key, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(environ={key: value})


def test_scale_keys_database_and_shards(tmp_path):
    config = load_config(environ={"DINOBOT_DATA_DIR": str(tmp_path)})
    assert config.database.backend == "sqlite" and config.database.path == tmp_path / "dinobot.sqlite3"
    assert config.shards.runs_all and config.shards.owns(123 << 22)
    config = load_config(environ={
        "DINOBOT_DATABASE_URL": "postgresql://bot:pw@db.example:5433/dino", "DINOBOT_SHARD_COUNT": "4",
        "DINOBOT_SHARD_IDS": "0-1,3", "DINOBOT_FINETUNE_LEASE_SECONDS": "15"})
    assert config.database.backend == "postgresql" and "pw" not in config.database.redacted
    assert config.shards.ids == (0, 1, 3) and config.shards.count == 4 and config.training.lease_seconds == 15
    assert [config.shards.owns(shard << 22) for shard in range(4)] == [True, True, False, True]
    assert load_config(environ={"DINOBOT_DATABASE_URL": "sqlite:///x/y.db"}).database.path == Path("x/y.db")
    assert load_config(environ={"DINOBOT_DATABASE_URL": "sqlite:////abs/y.db"}).database.path == Path("/abs/y.db")


@pytest.mark.parametrize("env, fragment", [
    ({"DINOBOT_DATABASE_URL": "mysql://db/dino"}, "DINOBOT_DATABASE_URL must start with sqlite:/// or postgresql://"),
    ({"DINOBOT_DATABASE_URL": "postgresql://db.example:99999/dino"}, "DINOBOT_DATABASE_URL the port"),
    ({"DINOBOT_DATABASE_URL": "postgresql://db.example:5432"}, "names no database"),
    ({"DINOBOT_DATABASE_URL": "sqlite://host/file.db"}, "no host"),
    ({"DINOBOT_SHARD_IDS": "0"}, "DINOBOT_SHARD_IDS needs DINOBOT_SHARD_COUNT"),
    ({"DINOBOT_SHARD_COUNT": "2", "DINOBOT_SHARD_IDS": "1-2"}, "shards 0 to 1"),
    ({"DINOBOT_SHARD_COUNT": "2", "DINOBOT_SHARD_IDS": "0,x"}, "not a shard number"),
    ({"DINOBOT_SHARD_COUNT": "4", "DINOBOT_SHARD_IDS": "0-2,1"}, "names a shard twice"),
    ({"DINOBOT_SHARD_COUNT": "0"}, "DINOBOT_SHARD_COUNT must be a whole number from 1 to 100,000"),
])
def test_bad_scale_settings_name_the_key(env, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_config(environ=env)


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


@pytest.mark.parametrize("key, value", [
    ("DINOBOT_PROMOTE_TOLERANCE", "nan"),  # would promote every worse model (nan comparisons are False)
    ("DINOBOT_PROMOTE_TOLERANCE", "inf"),
    ("DINOBOT_PROMOTE_TOLERANCE", "-Infinity"),
    ("DINOBOT_PROMOTE_TOLERANCE", "5"),
    ("DINOBOT_DAILY_LIMIT", "1" * 25),  # overflowed SQLite's 64-bit integers on every /submit
    ("DINOBOT_DAILY_LIMIT", "10001"),
    ("DINOBOT_FINETUNE_EVERY_MINUTES", "nan"),  # showed "every nan min" in /settings
    ("DINOBOT_FINETUNE_EVERY_MINUTES", "inf"),
    ("DINOBOT_FINETUNE_EVERY_MINUTES", "0.01"),  # a scheduler tick every 0.6 s
    ("DINOBOT_FINETUNE_EVERY_MINUTES", "1e9"),
    ("DINOBOT_GENERATE_PER_30S", "9" * 20),
    ("DINOBOT_SUBMIT_PER_MINUTE", "100000"),
    ("DINOBOT_FINETUNE_MIN_NEW", "1" * 30),
    ("DINOBOT_FINETUNE_MIN_NAMES", "2"),
    ("DINOBOT_MAX_CACHED_MODELS", "1" * 19),
])
def test_every_number_is_finite_and_in_its_documented_range(key, value):
    with pytest.raises(ConfigError) as caught:
        load_config(environ={key: value})
    low, high = SETTING_RANGES[key]
    message = str(caught.value)
    assert message.startswith(key) and f"{low:,} to {high:,}" in message and value in message, message


def test_a_server_id_must_fit_a_snowflake():
    with pytest.raises(ConfigError, match="DEV_GUILD_ID must be a server id"):
        load_config(environ={"DEV_GUILD_ID": "9" * 25})  # more than 64 bits: no Discord id is that long


@pytest.mark.parametrize("key, value, expected", [
    ("DINOBOT_PROMOTE_TOLERANCE", "-1", -1.0), ("DINOBOT_PROMOTE_TOLERANCE", "1", 1.0),
    ("DINOBOT_PROMOTE_TOLERANCE", "0", 0.0), ("DINOBOT_DAILY_LIMIT", "10000", 10_000),
    ("DINOBOT_FINETUNE_EVERY_MINUTES", "0", 0.0), ("DINOBOT_FINETUNE_EVERY_MINUTES", "1", 1.0),
    ("DINOBOT_FINETUNE_EVERY_MINUTES", "10080", 10_080.0), ("DEV_GUILD_ID", str(2**63 - 1), 2**63 - 1),
])
def test_the_ends_of_each_range_are_accepted(key, value, expected):
    config = load_config(environ={key: value})
    found = {"DINOBOT_PROMOTE_TOLERANCE": config.training.tolerance, "DINOBOT_DAILY_LIMIT": config.daily_limit,
             "DINOBOT_FINETUNE_EVERY_MINUTES": config.training.schedule_minutes,
             "DEV_GUILD_ID": config.dev_guild_id}[key]
    assert found == expected


def test_the_readme_and_env_example_document_every_range():
    """One source of truth (SETTING_RANGES); the two documents must say the same."""
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / ".env.example").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in readme.splitlines()
            if line.startswith("| `")}
    for key, (low, high) in SETTING_RANGES.items():
        documented = f"{low:,} to {high:,}"
        assert key in rows and documented in rows[key], (key, documented, rows.get(key))
        block = example.split(key)[0].rsplit("\n\n", 1)[-1]  # the comment just above the key
        assert documented in block, (key, documented, block)


@pytest.mark.parametrize("key, value, fragment", [
    ("DINOBOT_BASE_CHECKPOINT", "/no/such/base.npz", "DINOBOT_BASE_CHECKPOINT names a file that does not exist"),
    ("DINOBOT_DATA_DIR", "{file}", "is a file, not a folder"),
])
def test_paths_that_cannot_work_are_refused_naming_the_key(tmp_path, key, value, fragment):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigError, match=fragment):
        load_config(environ={key: value.format(file=a_file)})
