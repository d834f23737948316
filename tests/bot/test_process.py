"""``python -m bot`` as a real process: usage, configuration errors, remote problems at start, a
clean SIGTERM, and a kill -9 in the middle of a fine-tune.

The first tests need no Discord at all: the process must refuse to start, with exit code 2 and
a message that says what to do. The others run the real process against the fake Discord
(``DINOBOT_DISCORD_API_BASE``, a tests-only setting read by ``bot/__main__.py``). No assertion
here reads a clock: each wait has a deadline that only catches a hang, and what is checked is
what happened and in which order.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from bot.services.store import Store
from tests.support.fake_discord import FakeDiscord
from tests.support.harness import ADMIN, GUILD_A, MEMBER, OWNER, make_guild
from tests.support.name_factory import name_for

EXIT_CONFIG = 2
DEADLINE = 30.0  # seconds; only a hung process takes this long
#: Approved names put in the database before the bot starts: enough that a fine-tune takes
#: seconds (about 4 s here), so a signal sent at its first progress edit always lands mid-way.
PREFILLED = 400


def run_bot(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=DEADLINE, check=False)


def plain(text: str) -> str:
    """Console output without its colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def assert_in_order(text: str, *fragments: str) -> None:
    """Each fragment appears in ``text``, each after the one before."""
    position = 0
    for fragment in fragments:
        found = text.find(fragment, position)
        assert found >= 0, f"{fragment!r} missing after position {position}:\n{text}"
        position = found + len(fragment)


async def prefilled(data: Path, count: int = PREFILLED) -> None:
    async with await Store.open(data / "dinobot.sqlite3", daily_limit=None) as store:
        for i in range(count):
            await store.names.submit(GUILD_A, 50_000 + i, name_for(i))


def bot_env(api_base: str, data: Path, token: str = "fake-bot-token", **more: str) -> dict[str, str]:
    return {"DISCORD_TOKEN": token, "DINOBOT_DATA_DIR": str(data), "DINOBOT_FINETUNE_MIN_NAMES": "5",
            "DINOBOT_DISCORD_API_BASE": api_base, **more}


@contextlib.asynccontextmanager
async def bot_process(cwd: Path, env: dict[str, str],
                      console: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot`` writing its console to ``console``; killed if a test leaves it running."""
    with open(console, "ab") as out:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=cwd, env=env,
                                                       stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def stop(process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), timeout=DEADLINE)


async def wait_for_text(console: Path, predicate: Callable[[str], bool], what: str) -> str:
    """Poll the console file until ``predicate(text)``; fail after :data:`DEADLINE`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while True:
        text = plain(console.read_text(errors="replace")) if console.exists() else ""
        if predicate(text):
            return text
        assert loop.time() < deadline, f"timed out waiting for {what}:\n{text}"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------- no Discord needed


def test_help_prints_usage_and_starts_nothing(tmp_path):
    done = run_bot(tmp_path, {}, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m bot")
    assert "--sync" in done.stdout and "Exit codes" in done.stdout
    assert list(tmp_path.iterdir()) == []  # no data folder, no log: nothing started
    wrong = run_bot(tmp_path, {}, "--bogus")
    assert wrong.returncode == EXIT_CONFIG and "usage:" in wrong.stderr and "Traceback" not in wrong.stderr


def test_without_a_token_it_exits_2_and_says_how_to_get_one(tmp_path):
    done = run_bot(tmp_path, env={})  # nothing in the environment, no .env in the working directory
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "discord.com/developers/applications" in done.stderr
    assert "Reset Token" in done.stderr and "DISCORD_TOKEN" in done.stderr and ".env" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # refused before writing anything (no data dir, no log)


@pytest.mark.parametrize("key, value", [
    ("DINOBOT_DAILY_LIMIT", "abc"),
    ("DINOBOT_DAILY_LIMIT", "1" * 25),  # every /submit used to fail with an SQLite overflow
    ("DINOBOT_PROMOTE_TOLERANCE", "lots"),
    ("DINOBOT_PROMOTE_TOLERANCE", "nan"),  # every worse model used to be promoted
    ("DINOBOT_FINETUNE_EVERY_MINUTES", "nan"),  # /settings used to say "every nan min"
    ("DINOBOT_DISCORD_API_BASE", "https://example.com/api"),  # tests only, loopback only
    ("DINOBOT_DATABASE_URL", "mysql://db.example/dino"),
])
def test_an_invalid_setting_exits_2_naming_the_key(tmp_path, key, value):
    done = run_bot(tmp_path, env={"DISCORD_TOKEN": "not-a-real-token", key: value})
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert key in done.stderr and value in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_settings_are_read_from_dotenv_in_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text("DISCORD_TOKEN=not-a-real-token\nDINOBOT_DAILY_LIMIT=abc\n")
    done = run_bot(tmp_path, env={})
    assert done.returncode == EXIT_CONFIG and "DINOBOT_DAILY_LIMIT" in done.stderr, done.stderr


# ---------------------------------------------------------------------- against the fake Discord


async def test_sigterm_mid_fine_tune_exits_0_and_leaves_everything_clean(fake, tmp_path):
    data = tmp_path / "data"
    await prefilled(data)
    console = tmp_path / "console.log"
    async with bot_process(tmp_path, bot_env(fake.base_url, data, fake.token), console) as process:
        await fake.wait_for_ready(timeout=DEADLINE)
        reply = await (await fake.slash("dinoname", {"count": 2}, user=MEMBER)).response()
        assert reply["type"] == 4 and "base model" in reply["data"]["embeds"][0]["footer"]["text"]
        for name in ("glimosaurus", "quilodon", "brontofex", "zephoraptor", "mossops"):  # 5 a minute each
            assert (await (await fake.slash("submit", {"name": name}, user=ADMIN)).response())["type"] == 4
        handle = await fake.slash("retrain", user=ADMIN)
        await handle.response()
        await handle.wait_for_edits(1, timeout=DEADLINE)
        code = await stop(process)
    output = plain(console.read_text(errors="replace"))
    assert code == 0, output
    assert "Traceback" not in output
    assert "PyNaCl" not in output and "davey" not in output, "no voice warnings: the bot has no voice"
    # The order of a clean shutdown: stop training, show the reply's final state, close the database.
    assert_in_order(output, "shutting down", "training service closed",
                    "closed " + str(data / "dinobot.sqlite3"))
    final = handle.edits[-1]
    assert final["components"] == [], "the /retrain reply got its final edit before the bot left"
    assert final["embeds"][0]["title"] == "⏹️ Fine-tune cancelled"
    assert "shutting down" in final["embeds"][0]["description"]
    assert not list(data.rglob("*.tmp")), "no temp files left behind"
    assert not (data / "dinobot.sqlite3-wal").exists(), "the database was closed (WAL checkpointed away)"
    with sqlite3.connect(data / "dinobot.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM submissions").fetchone() == (PREFILLED + 5,)
        assert db.execute("SELECT count(*) FROM live_replies").fetchone() == (0,)


async def test_after_kill_9_mid_fine_tune_the_restart_says_it_is_restarting(fake, tmp_path):
    """The reply used to stay at "2 %" with a live Cancel button for good. The job survives the
    crash in the database and runs again once the dead process's lease expires, so the reply says
    it is restarting (a job that is gone would say "interrupted", see tests/bot/test_retrain.py)."""
    data = tmp_path / "data"
    await prefilled(data)
    console = tmp_path / "console.log"
    env = bot_env(fake.base_url, data, fake.token)
    async with bot_process(tmp_path, env, console) as first:
        await fake.wait_for_ready(timeout=DEADLINE)
        handle = await fake.slash("retrain", user=ADMIN)
        await handle.response()
        await handle.wait_for_edits(1, timeout=DEADLINE)
        first.kill()
        assert await first.wait() == -signal.SIGKILL
    assert handle.edits[-1]["components"], "a live Cancel button, as the crash left it"
    async with bot_process(tmp_path, env, console) as second:
        await fake.wait_for_ready(count=2, timeout=DEADLINE)
        await handle.wait_for(lambda h: not h.edits[-1]["components"], timeout=DEADLINE, what="the note")
        assert await stop(second) == 0
    final = handle.edits[-1]["embeds"][0]
    assert final["title"] == "🔁 Fine-tune restarting" and "/retrain" in final["description"]
    assert "starts again by itself" in final["description"]
    with sqlite3.connect(data / "dinobot.sqlite3") as db:
        assert db.execute("SELECT count(*) FROM live_replies").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM model_versions").fetchone() == (0,)
        # Still in the database for the next start: the killed process's 60 s lease had not expired.
        assert db.execute("SELECT state, attempts FROM training_jobs").fetchall() == [("running", 1)]


@pytest.mark.fake_refusals  # the token Discord refuses is the point
async def test_a_token_discord_refuses_exits_1_saying_what_to_do(fake, tmp_path):
    env = bot_env(fake.base_url, tmp_path / "data", token="not-the-right-token")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=DEADLINE)
    assert process.returncode == 1, output
    text = output.decode(errors="replace")
    assert "Reset Token" in text and "Traceback" not in text
    assert fake.gateway.ready_count == 0


@pytest.mark.fake_refusals  # the 403 is the point
async def test_a_dev_server_the_bot_is_not_in_exits_2_saying_so(fake, tmp_path):
    env = bot_env(fake.base_url, tmp_path / "data", fake.token, DEV_GUILD_ID="4242")
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=DEADLINE)
    text = plain(output.decode(errors="replace"))
    assert process.returncode == EXIT_CONFIG, text
    errors = [line for line in text.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "DEV_GUILD_ID" in errors[0] and "4242" in errors[0], text
    assert "not in that server" in errors[0] and "Traceback" not in text
    assert "closed " in text  # the database opened before the sync is closed again
    assert fake.gateway.ready_count == 0


async def test_an_unreachable_discord_is_retried_with_backoff_until_it_answers(tmp_path):
    """A network blip at boot needs no human: one log line per failed attempt, then it connects."""
    with socket.socket() as sock:  # a port where nothing listens yet
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    console = tmp_path / "console.log"
    env = bot_env(f"http://127.0.0.1:{port}", tmp_path / "data")
    async with bot_process(tmp_path, env, console) as process:
        await wait_for_text(console, lambda text: "attempt 2 failed" in text, "two failed attempts")
        guilds = [make_guild(GUILD_A, "Dino Club")]
        async with FakeDiscord(guilds=guilds, owner=OWNER, port=port) as fake:
            await fake.wait_for_ready(timeout=DEADLINE)
            reply = await (await fake.slash("dinoname", user=MEMBER)).response()
            assert reply["type"] == 4
            assert await stop(process) == 0
        fake.assert_clean()
    output = plain(console.read_text(errors="replace"))
    retries = [line for line in output.splitlines() if "Discord is not reachable" in line]
    assert len(retries) >= 2 and "Traceback" not in output, output
    assert "attempt 1 failed, trying again in 1 s" in retries[0]
    assert "attempt 2 failed, trying again in 2 s" in retries[1]
    assert_in_order(output, "attempt 2 failed", "synced 9 slash commands", "has connected to Gateway")


async def test_sigterm_while_waiting_for_discord_exits_0_closing_the_database(tmp_path):
    with socket.socket() as sock:  # nothing will ever listen here
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    console = tmp_path / "console.log"
    data = tmp_path / "data"
    async with bot_process(tmp_path, bot_env(f"http://127.0.0.1:{port}", data), console) as process:
        await wait_for_text(console, lambda text: "attempt 1 failed" in text, "a failed attempt")
        assert await stop(process) == 0
    output = plain(console.read_text(errors="replace"))
    assert_in_order(output, "attempt 1 failed", "shutting down before connecting to Discord",
                    "closed " + str(data / "dinobot.sqlite3"))
    assert "Traceback" not in output
