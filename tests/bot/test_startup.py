"""Start-up failures of the real ``python -m bot`` process: one line, the right exit code, no hang.

Every local resource is checked before the bot talks to Discord. Each case below used to print a
traceback (and a broken base checkpoint left the process hanging on the database's thread); now
each must end the process promptly with exit code 2 (a setting to fix) or 1 (a file or folder to
repair) and one line that names the setting or the file. The process is pointed at a loopback
port where nothing listens, so a check that failed to catch its case would show up as retries
(and the deadline below), never as a request to the real Discord.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import DinoBot
from bot.errors import EXIT_CONFIG, EXIT_DATA, StartupError, StorageError
from bot.services.store.migrations import SCHEMA_VERSION
from bot.startup import TokenRefused, wait_for_discord
from tests.support.harness import make_config

DEADLINE = 60  # seconds; a start-up failure takes about one. Past this the process hangs: a failure.
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cwd: Path, env: dict[str, str], preexec_fn=None) -> subprocess.CompletedProcess[str]:
    base = {"DISCORD_TOKEN": "fake-bot-token", "DINOBOT_DISCORD_API_BASE": f"http://127.0.0.1:{closed_port()}",
            "PATH": os.environ.get("PATH", ""), "DINO_CORPUS_DIR": os.environ.get("DINO_CORPUS_DIR", "")}
    return subprocess.run([sys.executable, "-m", "bot"], cwd=cwd, env={**base, **env}, capture_output=True,
                          text=True, timeout=DEADLINE, check=False, preexec_fn=preexec_fn)


def plain_text(text: str) -> str:
    """Console output without its colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def plain(done: subprocess.CompletedProcess[str]) -> str:
    """Everything the process printed, without the console's colour codes."""
    return plain_text(done.stdout + done.stderr)


def the_one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single line that explains the failure (an ERROR log line, or stderr when it came
    before logging started); fails if there is none, several, or a traceback."""
    output = plain(done)
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines()
              if " ERROR " in line or line.startswith(("Cannot", "Config"))]
    assert len(errors) == 1, output
    return errors[0]


def no_database_thread_left(done: subprocess.CompletedProcess[str]) -> None:
    """The database was opened, so it must have been closed (else the process would hang)."""
    output = plain(done)
    if "opened " in output:
        assert "closed " in output, output


# ---------------------------------------------------------------------- configuration: exit 2


def test_a_data_folder_that_is_a_file(tmp_path):
    (tmp_path / "var").write_text("not a folder")
    done = start(tmp_path, {"DINOBOT_DATA_DIR": "var"})
    assert done.returncode == EXIT_CONFIG, done
    line = the_one_line(done)
    assert "DINOBOT_DATA_DIR" in line and "var is a file" in line


def test_a_data_folder_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("not a folder")
    done = start(tmp_path, {"DINOBOT_DATA_DIR": "plain/var"})
    assert done.returncode == EXIT_CONFIG, done
    assert "DINOBOT_DATA_DIR" in the_one_line(done)


def test_a_base_checkpoint_setting_that_names_no_file(tmp_path):
    done = start(tmp_path, {"DINOBOT_BASE_CHECKPOINT": str(tmp_path / "missing.npz")})
    assert done.returncode == EXIT_CONFIG, done
    line = the_one_line(done)
    assert "DINOBOT_BASE_CHECKPOINT" in line and "missing.npz" in line
    assert not (tmp_path / "var").exists(), "refused before anything was written"


# ---------------------------------------------------------------------- data: exit 1


def test_a_corrupt_base_checkpoint_exits_at_once_closing_the_database(tmp_path):
    """Used to print a traceback and hang for ever on aiosqlite's non-daemon thread."""
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    done = start(tmp_path, {"DINOBOT_BASE_CHECKPOINT": str(broken)})
    assert done.returncode == EXIT_DATA, done
    line = the_one_line(done)
    assert "DINOBOT_BASE_CHECKPOINT" in line and "broken.npz" in line
    no_database_thread_left(done)


def test_a_failure_after_the_database_opened_closes_it(tmp_path):
    """A failure once the database is open (here the base model, which loads after it): it must
    be closed again, not leak its thread. (Checkpoints live in the database now, so the models
    folder is no longer something that can fail here.)"""
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    done = start(tmp_path, {"DINOBOT_DATA_DIR": "var", "DINOBOT_BASE_CHECKPOINT": str(broken)})
    assert done.returncode == EXIT_DATA, done
    assert "DINOBOT_BASE_CHECKPOINT" in the_one_line(done)
    assert "opened " in plain(done) and "closed " in plain(done), plain(done)


@pytest.mark.parametrize("key, bad, fragment", [
    ("DINOBOT_BASE_CORPUS", "t-rex", "'-'"),  # the known dinosaurs
    ("DINOBOT_BASE_VALIDATION", "raptor 2", "samples"),  # what fine-tunes are judged on; empty: samples
])
def test_a_names_file_with_a_bad_line_is_named_with_its_setting(tmp_path, key, bad, fragment):
    names = tmp_path / "names.txt"
    names.write_text(f"tyrannosaurus\n{bad}\nvelociraptor\n")
    done = start(tmp_path, {key: str(names)})
    assert done.returncode == EXIT_DATA, done
    line = the_one_line(done)
    assert key in line and "names.txt, line 2" in line and fragment in line


def test_a_garbage_database_file(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "dinobot.sqlite3").write_bytes(b"this is no database at all\n" * 200)
    done = start(tmp_path, {"DINOBOT_DATA_DIR": "var"})
    assert done.returncode == EXIT_DATA, done
    line = the_one_line(done)
    assert "DINOBOT_DATA_DIR" in line and "dinobot.sqlite3" in line and "not a database" in line
    assert (tmp_path / "var" / "dinobot.sqlite3").read_bytes().startswith(b"this is no database"), "untouched"


def test_a_database_from_a_newer_dinobot(tmp_path):
    (tmp_path / "var").mkdir()
    with sqlite3.connect(tmp_path / "var" / "dinobot.sqlite3") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    done = start(tmp_path, {"DINOBOT_DATA_DIR": "var"})
    assert done.returncode == EXIT_DATA, done
    line = the_one_line(done)
    assert "dinobot.sqlite3" in line and f"schema version {SCHEMA_VERSION + 1}" in line
    with sqlite3.connect(tmp_path / "var" / "dinobot.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)  # not touched
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def without_root_override() -> None:
    """In the child, before exec: drop the capabilities that let root write anywhere."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_read_only_data_folder(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    data.chmod(0o555)
    preexec = None
    if os.geteuid() == 0:  # root ignores permission bits unless it gives up CAP_DAC_OVERRIDE
        probe = subprocess.run(["true"], preexec_fn=without_root_override, check=False, capture_output=True)
        if probe.returncode != 0:
            pytest.skip("running as root without the right to drop capabilities")
        preexec = without_root_override
    try:
        done = start(tmp_path, {"DINOBOT_DATA_DIR": "var"}, preexec_fn=preexec)
    finally:
        data.chmod(0o755)
    assert done.returncode == EXIT_DATA, done
    line = the_one_line(done)
    assert "DINOBOT_DATA_DIR" in line and "cannot write" in line and str(data) in line
    assert list(data.iterdir()) == []


# ---------------------------------------------------------------------- in the process


async def test_a_failure_half_way_through_start_up_closes_what_was_opened(tmp_path):
    """The database opens before the models: when they fail, close() must still close it."""
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    config = replace(make_config(tmp_path / "data"), base_checkpoint=broken)
    config.data_dir.mkdir(parents=True)
    bot = DinoBot(config)
    async with bot:  # as python -m bot runs it (an AutoShardedBot needs its set-up before close())
        with pytest.raises(StartupError, match="DINOBOT_BASE_CHECKPOINT") as caught:
            await bot.open_services()
        assert caught.value.exit_code == EXIT_DATA
        store = bot.store  # opened before the failure
        store.db.check_open()
        await bot.close()
    with pytest.raises(StorageError, match="closed"):
        store.db.check_open()
    for thread in [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]:
        thread.join(timeout=10)  # its last step follows close(); a thread that never ends hangs the process
        assert not thread.is_alive()


def test_an_unexpected_error_is_one_line_on_the_console_and_a_traceback_in_the_log(tmp_path, monkeypatch,
                                                                                    capsys):
    """A bug, not a case the checks know: still one console line, the details in the log file."""
    import bot.__main__ as entry

    async def broken(config, *, force_sync=False):
        raise RuntimeError("boom\nwith a second line")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", "fake-bot-token")
    monkeypatch.setenv("DINOBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(entry, "run", broken)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        assert entry.main([]) == EXIT_DATA
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(saved[1])
    console = plain_text(capsys.readouterr().err)
    assert "Traceback" not in console
    (line,) = [line for line in console.splitlines() if " ERROR " in line]
    assert "RuntimeError: boom with a second line" in line and "dinobot.log" in line
    log_file = (tmp_path / "var" / "dinobot.log").read_text()
    assert "Traceback" in log_file and "RuntimeError: boom" in log_file


# ---------------------------------------------------------------------- waiting for Discord


@contextlib.asynccontextmanager
async def discord_answering(statuses: list[int]):
    """A stand-in for Discord's ``GET /users/@me`` answering with ``statuses`` in turn (then 200)."""
    seen: list[str] = []

    async def me(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        status = statuses.pop(0) if statuses else 200
        return web.json_response({"id": "1"} if status == 200 else {"message": "no"}, status=status)

    app = web.Application()
    app.router.add_get("/api/v10/users/@me", me)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/v10", seen
    finally:
        await runner.cleanup()


async def test_server_errors_and_rate_limits_are_retried_with_growing_waits(caplog):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
    async with discord_answering([503, 502, 429, 500]) as (base, seen):
        attempts = await wait_for_discord(base, "the-token", "DinoBot test", sleep=sleep)
    assert attempts == 5 and seen == ["Bot the-token"] * 5
    assert len(waits) == 4 and all(2**i <= wait <= 1.2 * 2**i for i, wait in enumerate(waits)), waits
    lines = [r.getMessage() for r in caplog.records if "not reachable" in r.getMessage()]
    reasons = [line.split("(")[1].split(")")[0] for line in lines]
    assert reasons == ["HTTP 503", "HTTP 502", "HTTP 429", "HTTP 500"]


async def test_a_refused_token_is_not_retried():
    async def sleep(seconds: float) -> None:
        raise AssertionError("a 401 must not be retried")
    async with discord_answering([401]) as (base, seen):
        with pytest.raises(TokenRefused):
            await wait_for_discord(base, "wrong", "DinoBot test", sleep=sleep)
    assert len(seen) == 1


async def test_the_waits_stop_growing_at_a_minute():
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
    async with discord_answering([503] * 9) as (base, _):
        await wait_for_discord(base, "t", "DinoBot test", sleep=sleep)
    assert len(waits) == 9 and all(60 <= w <= 72 for w in waits[6:]) and max(waits) <= 72
