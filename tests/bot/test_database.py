"""The bot and its database: a wrong URL or an unreachable server at start-up, an outage mid-run.

The start-up checks run the real ``python -m bot``: it must exit with one line saying what is
wrong (2 for a malformed URL, before anything else; 1 for a server it cannot reach or that
refuses it), never a traceback. The outage runs the bot in this process on PostgreSQL in the
crashable cluster, and crashes the server between interactions: members get an apology and
nothing they were told is saved is lost; once the server is back, the same bot works again
without a restart.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from dataclasses import replace

import pytest

from bot.errors import DatabaseUnavailable
from tests.support.harness import GUILD_A, MEMBER, OTHER_MEMBER, make_config, running

EPHEMERAL = 64


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


async def run_bot(env: dict[str, str], cwd) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=cwd, env=env,
                                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize("where, message", [
    ("closed port", "cannot reach PostgreSQL at postgresql://dinobot:***@127.0.0.1:"),
    ("missing database", "does not exist"),
])
async def test_a_database_it_cannot_use_at_start_up_exits_1_with_one_line(fake, tmp_path, postgres, where, message):
    url = (f"postgresql://dinobot:secret@127.0.0.1:{closed_port()}/dino" if where == "closed port"
           else postgres.url("no_such_database"))
    env = {"DISCORD_TOKEN": fake.token, "DINOBOT_DATA_DIR": str(tmp_path / "data"),
           "DINOBOT_DISCORD_API_BASE": fake.base_url, "DINOBOT_DATABASE_URL": url}
    code, output = await run_bot(env, tmp_path)
    assert code == 1, output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Cannot start: DINOBOT_DATABASE_URL:" in errors[0] and message in errors[0], output
    assert "Traceback" not in output and "secret" not in output
    assert fake.gateway.ready_count == 0  # it never went online half-working


async def test_the_database_going_away_mid_run_gets_an_apology_and_the_bot_recovers(fake, tmp_path,
                                                                                  crashable_postgres):
    server = crashable_postgres
    async with server.database() as url:
        async with running(fake, replace(make_config(tmp_path / "data"), database_url=url)) as harness:
            bot = harness.bot
            saved = await fake.slash("submit", {"name": "glimmerosaurus"}, user=MEMBER)
            assert (await saved.response())["type"] == 4
            assert (await (await fake.slash("dinoname", {"count": 2}, user=MEMBER)).response())["type"] == 4

            await asyncio.to_thread(server.stop)  # the database crashes
            lost = await fake.slash("submit", {"name": "quillodon"}, user=OTHER_MEMBER)
            reply = await lost.response()
            assert reply["data"]["flags"] & EPHEMERAL
            assert reply["data"]["content"] == DatabaseUnavailable.MEMBER_TEXT
            # What needs no database still works: this server's model and names are in memory.
            answer = await (await fake.slash("dinoname", {"count": 2}, user=MEMBER)).response()
            assert answer["type"] == 4 and "embeds" in answer["data"]

            assert await asyncio.to_thread(server.start)  # back, on the same address
            again = await fake.slash("submit", {"name": "brontofex"}, user=OTHER_MEMBER)
            assert (await again.response())["type"] == 4  # the pool reconnected by itself
            assert await bot.store.names.approved(GUILD_A) == ["brontofex", "glimmerosaurus"]
            fake.assert_clean()
