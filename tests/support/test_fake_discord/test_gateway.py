"""The fake's gateway and login: READY and command sync, a dropped connection resumed, heartbeats, a wrong token."""

from __future__ import annotations

import asyncio
import math

import discord
import pytest

from tests.support.fake_discord import FakeDiscord, FakeGuild
from tests.support.test_fake_discord.tiny_bot import GUILD_ID, OTHER_GUILD_ID, TinyBot, running_bot


async def test_login_ready_and_command_sync(fake: FakeDiscord, bot: TinyBot) -> None:
    await asyncio.wait_for(bot.wait_until_ready(), timeout=2)
    assert bot.user is not None and bot.user.id == fake.application_id
    assert {guild.id for guild in bot.guilds} == {GUILD_ID, OTHER_GUILD_ID}
    assert bot.get_guild(GUILD_ID).get_channel(GUILD_ID + 1) is not None  # type: ignore[union-attr]
    assert [(r.method, r.path) for r in fake.requests[:2]] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
    ]
    assert fake.gateway.identify_payloads[0]["token"] == fake.token
    assert fake.gateway.connections[0].query["encoding"] == "json"

    assert fake.sync_count() == 1 and fake.sync_count(None) == 1
    synced = {command["name"]: command for command in fake.commands()}
    assert set(synced) == {
        "ping",
        "echo",
        "slow",
        "counter",
        "chatter",
        "pick",
        "species",
        "whoami",
        "suggest",
        "toolong",
        "sleepy",
        "names",
    }
    names_options = {option["name"]: option["type"] for option in synced["names"]["options"]}
    assert names_options == {"list": 1, "admin": 2}
    fetched = await bot.tree.fetch_commands()
    assert {command.name: command.id for command in fetched} == {name: int(c["id"]) for name, c in synced.items()}

    await fake.add_guild(FakeGuild(id=3000, name="New Club"))
    await fake.wait_until(lambda: bot.get_guild(3000), what="the bot to see the new guild")
    fake.assert_clean()


async def test_gateway_drop_then_resume(fake: FakeDiscord, bot: TinyBot) -> None:
    dropped = await fake.drop_connection(code=4000)
    assert dropped.close_code == 4000
    resumed = await fake.wait_for_resume()
    assert resumed.path == "/gateway/resume" and resumed.replayed == 0
    assert (await (await fake.slash("ping")).response())["data"]["content"] == "pong"

    # An interaction injected during an outage waits in the session log and is replayed on RESUME.
    await fake.drop_connection(abrupt=True)
    during_outage = await fake.slash("ping")
    resumed = await fake.wait_for_resume(count=2)
    assert resumed.replayed == 1
    assert (await during_outage.response())["data"]["content"] == "pong"
    assert fake.gateway.ready_count == 1
    assert [event.seq for event in fake.gateway.events] == list(range(1, fake.gateway.seq + 1))
    await fake.wait_until(lambda: bot.resumed_count == 2, what="two on_resumed events")

    # A session Discord will not resume: the client must IDENTIFY again.
    await fake.gateway.invalidate_session(resumable=False)
    await fake.wait_for_ready(count=2)
    assert (await (await fake.slash("ping")).response())["data"]["content"] == "pong"
    fake.assert_clean()


async def test_heartbeats_are_sent_and_acknowledged() -> None:
    """Heartbeats arrive, carry the session's sequence number, and their ACKs reach the client
    (its latency is measured from them); how regular they are is a benchmark figure."""
    interval = 0.1
    async with FakeDiscord(guilds=[FakeGuild(id=GUILD_ID)], heartbeat_interval=interval) as fake, fake.patch_discord():
        async with running_bot(fake) as bot:
            await fake.wait_until(lambda: len(fake.gateway.heartbeats) >= 5, timeout=3, what="5 heartbeats")
            connection = fake.gateway.current
            assert connection.heartbeat_seqs[-1] == fake.gateway.seq
            assert len(fake.gateway.heartbeat_gaps()) >= 4
            await fake.wait_until(lambda: math.isfinite(bot.latency), timeout=3, what="an acknowledged heartbeat")
            assert bot.latency > 0
        fake.assert_clean()


@pytest.mark.fake_refusals  # the 401 is the point
async def test_wrong_token_is_refused(fake: FakeDiscord) -> None:
    bot = TinyBot()
    with pytest.raises(discord.LoginFailure):
        await bot.login("not-the-token")
    await bot.close()
    assert fake.requests[0].status == 401
