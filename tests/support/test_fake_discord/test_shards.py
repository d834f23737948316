"""The fake Discord shards like Discord: each guild's events reach only its shard's connection.

First at the wire (raw websockets identifying as shards [0, 2] and [1, 2]), then with the real
discord.py ``AutoShardedBot``: all shards in one client, one shard per client (the way a
cluster of bot processes splits them), and the shard count Discord recommends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from typing import Any, AsyncIterator, Dict, List, Optional

import aiohttp
import discord
import pytest
from discord.ext import commands

from tests.support.fake_checks import check_fake_at_teardown
from tests.support.fake_discord import FakeDiscord, FakeGuild, shard_for

# Snowflakes whose shard is (id >> 22) % 2: two guilds on shard 0, two on shard 1.
EVEN_A = (10 << 22) + 1000
EVEN_B = (12 << 22) + 1000
ODD_A = (11 << 22) + 2000
ODD_B = (13 << 22) + 2000
SHARD_GUILDS = {0: {EVEN_A, EVEN_B}, 1: {ODD_A, ODD_B}}


def test_the_shard_formula_is_discords() -> None:
    assert [shard_for(guild, 2) for guild in (EVEN_A, EVEN_B, ODD_A, ODD_B)] == [0, 0, 1, 1]
    assert shard_for(ODD_A, 1) == 0 and shard_for(None, 4) == 0  # one shard gets all; DMs: shard 0
    assert shard_for((7 << 22) | 0x3FFFFF, 3) == 1  # the low 22 bits (worker, counter) do not count


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    guilds = [FakeGuild(id=i, name=f"Server {i >> 22}") for i in (EVEN_A, ODD_A, EVEN_B, ODD_B)]
    async with FakeDiscord(guilds=guilds, heartbeat_interval=0.5) as server, server.patch_discord():
        yield server
    check_fake_at_teardown(server, request)


# -- at the wire ------------------------------------------------------------------------------------


class RawShard:
    """A hand-written gateway client for one shard: what arrives on its socket, nothing else."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.dispatches: List[Dict[str, Any]] = []

    async def identify(self, token: str, shard: Optional[List[int]]) -> Dict[str, Any]:
        hello = await self._frame()
        assert hello["op"] == 10
        data: Dict[str, Any] = {"token": token, "intents": 0, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await self.ws.send_json({"op": 2, "d": data})
        ready = await self._frame()
        assert ready["t"] == "READY"
        self.dispatches.append(ready)
        return ready["d"]

    async def resume(self, token: str, session_id: str, seq: int) -> None:
        await self._frame()  # HELLO
        await self.ws.send_json({"op": 6, "d": {"token": token, "session_id": session_id, "seq": seq}})

    async def sync(self) -> List[Dict[str, Any]]:
        """Every dispatch that reached this socket so far (a heartbeat's ACK fences the stream)."""
        await self.ws.send_json({"op": 1, "d": None})
        while True:
            frame = await self._frame()
            if frame["op"] == 11:
                return self.dispatches
            if frame["op"] == 0:
                self.dispatches.append(frame)

    def guild_ids(self, event: str) -> List[int]:
        ids = []
        for frame in self.dispatches:
            if frame["t"] == event:
                data = frame["d"]
                ids.append(int(data["id"] if event.startswith("GUILD_") else data.get("guild_id", 0)))
        return ids

    async def _frame(self) -> Dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), timeout=5)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return json.loads(message.data)


@contextlib.asynccontextmanager
async def raw_shards(fake: FakeDiscord, count: int) -> AsyncIterator[List[RawShard]]:
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(fake.gateway_url + "?v=10&encoding=json") for _ in range(count)]
        try:
            yield [RawShard(ws) for ws in sockets]
        finally:
            for ws in sockets:
                await ws.close()


async def test_each_shard_connection_gets_only_its_guilds_events(fake: FakeDiscord) -> None:
    async with raw_shards(fake, 2) as (zero, one):
        ready_zero = await zero.identify(fake.token, [0, 2])
        ready_one = await one.identify(fake.token, [1, 2])
        assert ready_zero["shard"] == [0, 2] and ready_one["shard"] == [1, 2]
        assert {int(g["id"]) for g in ready_zero["guilds"]} == SHARD_GUILDS[0]
        assert {int(g["id"]) for g in ready_one["guilds"]} == SHARD_GUILDS[1]
        assert ready_zero["session_id"] != ready_one["session_id"]

        for guild_id in (ODD_A, EVEN_A, ODD_B):
            await fake.slash("ping", guild=guild_id)
        await fake.slash("ping", guild=None)  # a DM
        await fake.add_guild(FakeGuild(id=(15 << 22) + 3000, name="New odd server"))
        await zero.sync()
        await one.sync()

        assert set(zero.guild_ids("GUILD_CREATE")) == SHARD_GUILDS[0]
        assert set(one.guild_ids("GUILD_CREATE")) == SHARD_GUILDS[1] | {(15 << 22) + 3000}
        assert zero.guild_ids("INTERACTION_CREATE") == [EVEN_A, 0]  # 0: the DM has no guild
        assert one.guild_ids("INTERACTION_CREATE") == [ODD_A, ODD_B]
        # Each session numbers its own events, without gaps.
        for raw in (zero, one):
            assert [frame["s"] for frame in raw.dispatches] == list(range(1, len(raw.dispatches) + 1))
        assert fake.gateway.shard_count == 2 and sorted(fake.gateway.sessions) == [0, 1]
        assert fake.gateway.live
    fake.assert_clean()


async def test_a_dropped_shard_resumes_its_own_events_while_the_other_keeps_going(fake: FakeDiscord) -> None:
    async with raw_shards(fake, 2) as (zero, one):
        await zero.identify(fake.token, [0, 2])
        ready_one = await one.identify(fake.token, [1, 2])
        await one.sync()
        last_seen = one.dispatches[-1]["s"]

        await fake.drop_connection(shard_id=1, abrupt=True)
        assert not fake.gateway.live and fake.gateway.sessions[0].live
        missed = await fake.slash("ping", guild=ODD_A)  # waits for shard 1's RESUME
        answered = await fake.slash("ping", guild=EVEN_A)  # shard 0 is unaffected
        await zero.sync()
        assert zero.dispatches[-1]["d"]["id"] == str(answered.id)
        assert missed.event is not None and missed.event.sends == 0

        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(fake.resume_gateway_url + "?v=10&encoding=json")
            again = RawShard(ws)
            await again.resume(fake.token, ready_one["session_id"], last_seen)
            await again.sync()
            assert [frame["t"] for frame in again.dispatches] == ["INTERACTION_CREATE", "RESUMED"]
            assert again.dispatches[0]["d"]["id"] == str(missed.id)
            await ws.close()
        assert fake.gateway.connections[-1].shard == (1, 2) and fake.gateway.connections[-1].replayed == 1

    with pytest.raises(LookupError, match="pass shard_id"):
        fake.gateway.session()


async def test_a_shard_whose_process_died_starts_a_fresh_session_on_identify(fake: FakeDiscord) -> None:
    async with raw_shards(fake, 2) as (dying, restarted):
        first = await dying.identify(fake.token, [1, 2])
        await dying.sync()
        # kill -9: the kernel closes the socket, no close frame; the session waits for a RESUME.
        dying.ws.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
        await fake.wait_until(lambda: not fake.gateway.sessions[1].live, what="the dead socket to be noticed")
        assert not fake.gateway.sessions[1].ended
        lost = await fake.slash("ping", guild=ODD_A)

        # The restarted process IDENTIFIES: a new session; what the dead one had queued is gone.
        second = await restarted.identify(fake.token, [1, 2])
        await restarted.sync()
        assert second["session_id"] != first["session_id"]
        assert [frame["t"] for frame in restarted.dispatches] == ["READY", "GUILD_CREATE", "GUILD_CREATE"]
        assert lost.event is not None and lost.event.sends == 0
        await fake.slash("ping", guild=ODD_B)
        await restarted.sync()
        assert restarted.guild_ids("INTERACTION_CREATE") == [ODD_B]


async def test_events_for_a_shard_nobody_runs_are_refused_loudly(fake: FakeDiscord) -> None:
    async with raw_shards(fake, 1) as (one,):
        await one.identify(fake.token, [1, 2])
        assert fake.shard_of(ODD_A) == 1 and fake.shard_of(EVEN_A) == 0
        with pytest.raises(RuntimeError, match=f"guild {EVEN_A} belong to shard 0 of 2"):
            await fake.slash("ping", guild=EVEN_A)
        with pytest.raises(RuntimeError, match="DMs belong to shard 0 of 2"):
            await fake.slash("ping", guild=None)
        await fake.slash("ping", guild=ODD_B)
        await one.sync()
        assert one.guild_ids("INTERACTION_CREATE") == [ODD_B]


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], ["0", "2"], [0]])
async def test_an_invalid_shard_is_closed_with_discords_code(fake: FakeDiscord, shard: List[Any]) -> None:
    async with raw_shards(fake, 1) as (raw,):
        await raw._frame()  # HELLO
        await raw.ws.send_json({"op": 2, "d": {"token": fake.token, "shard": shard, "properties": {}}})
        closing = await asyncio.wait_for(raw.ws.receive(), timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4010
    assert fake.gateway.sessions == {}


# -- with discord.py's AutoShardedBot --------------------------------------------------------------


class ShardedBot(commands.AutoShardedBot):
    """A tiny sharded bot: one command that says which shard serves the server it was used in."""

    def __init__(self, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, intents=discord.Intents.default(), guild_ready_timeout=0.05,
            **options,
        )
        self.shards_ready: List[int] = []

    async def setup_hook(self) -> None:
        @self.tree.command(description="Which shard serves this server?")
        async def shard(interaction: discord.Interaction) -> None:
            where = f"shard {interaction.guild.shard_id}" if interaction.guild else "a DM"
            await interaction.response.send_message(f"{where} of {self.shard_count}")

        await self.tree.sync()

    async def on_shard_ready(self, shard_id: int) -> None:
        self.shards_ready.append(shard_id)

    async def before_identify_hook(self, shard_id: Optional[int], *, initial: bool = False) -> None:
        """discord.py waits 5 s between shard IDENTIFYs (Discord's rate limit); the fake has none."""


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, **options: Any) -> AsyncIterator[ShardedBot]:
    bot = ShardedBot(**options)
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect())
    try:
        await asyncio.wait_for(bot.wait_until_ready(), timeout=10)
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, timeout=10)


async def answer(fake: FakeDiscord, guild: Optional[int]) -> str:
    return (await (await fake.slash("shard", guild=guild)).response())["data"]["content"]


async def test_auto_sharded_bot_sees_every_guild_across_its_shards(fake: FakeDiscord) -> None:
    async with running(fake, shard_count=2) as bot:
        assert sorted(bot.shards) == [0, 1] and sorted(bot.shards_ready) == [0, 1]
        assert {guild.id for guild in bot.guilds} == SHARD_GUILDS[0] | SHARD_GUILDS[1]
        assert all(guild.shard_id == shard_for(guild.id, 2) for guild in bot.guilds)
        assert [payload["shard"] for payload in fake.gateway.identify_payloads] == [[0, 2], [1, 2]]

        assert await answer(fake, ODD_A) == "shard 1 of 2"
        assert await answer(fake, EVEN_B) == "shard 0 of 2"
        assert await answer(fake, None) == "a DM of 2"
        names = {shard: [e.name for e in fake.gateway.sessions[shard].events] for shard in (0, 1)}
        assert names[0].count("INTERACTION_CREATE") == 2 and names[1].count("INTERACTION_CREATE") == 1

        # A shard that drops resumes on its own; the other never notices.
        await fake.drop_connection(shard_id=1)
        await fake.wait_for_resume()
        assert await answer(fake, ODD_B) == "shard 1 of 2"
        assert fake.gateway.ready_count == 2 and fake.gateway.connections[-1].shard == (1, 2)
    fake.assert_clean()


async def test_a_client_running_shard_1_of_2_sees_only_shard_1_guilds(fake: FakeDiscord) -> None:
    async with running(fake, shard_ids=[1], shard_count=2) as bot:
        assert sorted(bot.shards) == [1]
        assert {guild.id for guild in bot.guilds} == SHARD_GUILDS[1]
        assert await answer(fake, ODD_B) == "shard 1 of 2"
        with pytest.raises(RuntimeError, match="shard 0 of 2"):
            await fake.slash("shard", guild=EVEN_A)
    fake.assert_clean()


async def test_two_clients_split_the_shards_like_two_processes(fake: FakeDiscord) -> None:
    async with (
        running(fake, shard_ids=[0], shard_count=2) as first,
        running(fake, shard_ids=[1], shard_count=2) as second,
    ):
        assert {guild.id for guild in first.guilds} == SHARD_GUILDS[0]
        assert {guild.id for guild in second.guilds} == SHARD_GUILDS[1]
        assert await answer(fake, EVEN_A) == "shard 0 of 2"
        assert await answer(fake, ODD_A) == "shard 1 of 2"
        # The cluster's half that stops (a crashed process) takes only its own servers with it.
        await second.close()
        await fake.wait_until(lambda: fake.gateway.sessions[1].ended, what="shard 1's session to end")
        assert fake.gateway.sessions[0].live and not fake.gateway.sessions[1].live
        assert await answer(fake, EVEN_B) == "shard 0 of 2"
    fake.assert_clean()


async def test_without_a_shard_count_the_bot_takes_discords_recommendation() -> None:
    guilds = [FakeGuild(id=(n << 22) + 1000, name=f"Server {n}") for n in range(6)]
    async with FakeDiscord(guilds=guilds, recommended_shards=3) as fake, fake.patch_discord():
        async with running(fake) as bot:
            assert bot.shard_count == 3 and sorted(bot.shards) == [0, 1, 2]
            assert len(bot.guilds) == 6
            for shard in range(3):
                created = [e.data["id"] for e in fake.gateway.sessions[shard].events if e.name == "GUILD_CREATE"]
                assert sorted(int(guild_id) >> 22 for guild_id in created) == [shard, shard + 3]
            assert await answer(fake, (5 << 22) + 1000) == "shard 2 of 3"
        assert ("GET", "/gateway/bot") in [(r.method, r.path) for r in fake.requests]
        fake.assert_clean()
