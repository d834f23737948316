"""``python -m bot`` as a real process: configuration errors, and a clean SIGTERM.

The first tests need no Discord at all: the process must refuse to start, with exit code 2 and
a message that says what to do. The last one runs the real process against the fake Discord
(``DINOBOT_DISCORD_API_BASE``, a tests-only setting read by ``bot/__main__.py``), serves a
command, starts a fine-tune, and then sends SIGTERM mid-way: the process must exit 0 within a
few seconds, with the reply's final edit delivered, the database closed cleanly and no temp
files left.
"""
from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.harness import ADMIN, MEMBER

EXIT_CONFIG = 2
SHUTDOWN_SECONDS = 5.0  # SIGTERM to exit, a fine-tune cancelled on the way


def run_bot(cwd: Path, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_without_a_token_it_exits_2_and_says_how_to_get_one(tmp_path):
    done = run_bot(tmp_path, env={})  # nothing in the environment, no .env in the working directory
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "discord.com/developers/applications" in done.stderr
    assert "Reset Token" in done.stderr and "DISCORD_TOKEN" in done.stderr and ".env" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # refused before writing anything (no data dir, no log)


@pytest.mark.parametrize("key, value", [
    ("DINOBOT_DAILY_LIMIT", "abc"),
    ("DINOBOT_PROMOTE_TOLERANCE", "lots"),
    ("DINOBOT_DISCORD_API_BASE", "https://example.com/api"),  # tests only, loopback only
    ("DINOBOT_DATABASE_URL", "mysql://db.example/dino"),
])
def test_an_invalid_setting_exits_2_naming_the_key(tmp_path, key, value):
    done = run_bot(tmp_path, env={"DISCORD_TOKEN": "not-a-real-token", key: value})
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert key in done.stderr and value in done.stderr and "Traceback" not in done.stderr


def test_settings_are_read_from_dotenv_in_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text("DISCORD_TOKEN=not-a-real-token\nDINOBOT_DAILY_LIMIT=abc\n")
    done = run_bot(tmp_path, env={})
    assert done.returncode == EXIT_CONFIG and "DINOBOT_DAILY_LIMIT" in done.stderr, done.stderr


async def test_sigterm_mid_fine_tune_exits_0_and_leaves_everything_clean(fake, tmp_path):
    data = tmp_path / "data"
    env = {"DISCORD_TOKEN": fake.token, "DINOBOT_DATA_DIR": str(data), "DINOBOT_FINETUNE_MIN_NAMES": "5",
           "DINOBOT_DISCORD_API_BASE": fake.base_url}
    with open(tmp_path / "console.log", "wb") as console:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                       stdout=console, stderr=subprocess.STDOUT)
        try:
            await fake.wait_for_ready(timeout=30)
            reply = await (await fake.slash("dinoname", {"count": 2}, user=MEMBER)).response()
            assert reply["type"] == 4 and "base model" in reply["data"]["embeds"][0]["footer"]["text"]
            for name in ("glimosaurus", "quilodon", "brontofex", "zephoraptor", "mossops"):  # 5 a minute each
                assert (await (await fake.slash("submit", {"name": name}, user=ADMIN)).response())["type"] == 4
            handle = await fake.slash("retrain", user=ADMIN)
            await handle.response()
            await handle.wait_for_edits(1)
            asked = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=15)
            took = time.perf_counter() - asked
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = (tmp_path / "console.log").read_text(errors="replace")
    assert code == 0, output
    assert took < SHUTDOWN_SECONDS, f"shutdown took {took:.1f} s\n{output}"
    assert "shutting down" in output and "Traceback" not in output
    final = handle.edits[-1]
    assert final["components"] == [], "the /retrain reply got its final edit before the bot left"
    assert any(word in final["embeds"][0]["title"] for word in ("cancelled", "promoted")), final
    assert not list(data.rglob("*.tmp")), "no temp files left behind"
    assert not (data / "dinobot.sqlite3-wal").exists(), "the database was closed (WAL checkpointed away)"
    with sqlite3.connect(data / "dinobot.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM submissions").fetchone() == (5,)
    fake.assert_clean()


async def test_a_token_discord_refuses_exits_1_saying_what_to_do(fake, tmp_path):
    env = {"DISCORD_TOKEN": "not-the-right-token", "DINOBOT_DATA_DIR": str(tmp_path / "data"),
           "DINOBOT_DISCORD_API_BASE": fake.base_url}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1, output
    text = output.decode(errors="replace")
    assert "Reset Token" in text and "Traceback" not in text
    assert fake.gateway.ready_count == 0
