"""The fake's checks fail loudly: refused requests, unknown routes, late answers, and the teardown check."""

from __future__ import annotations

import asyncio

import aiohttp
import discord
import pytest

from tests.support.fake_checks import check_fake_at_teardown
from tests.support.fake_discord import FakeDiscord, FakeGuild, LateInteraction
from tests.support.test_fake_discord.tiny_bot import GUILD_ID, TinyBot, running_bot


@pytest.mark.fake_unchecked  # provokes a refusal and an unknown route to see them reported
async def test_refusals_are_loud(fake: FakeDiscord, bot: TinyBot) -> None:
    too_long = await fake.slash("toolong")
    with pytest.raises(AssertionError, match="50035"):
        await too_long.response()
    assert not too_long.acknowledged
    [refused] = fake.api_errors
    assert refused.status == 400 and refused.route == "/interactions/{interaction_id}/{token}/callback"
    with pytest.raises(AssertionError, match="refused"):
        fake.assert_clean()

    async with aiohttp.ClientSession() as session:
        async with session.get(
            fake.rest_base + "/no/such/route", headers={"Authorization": f"Bot {fake.token}"}
        ) as response:
            assert response.status == 404
            assert response.headers["Content-Type"] == "application/json"
    assert [r.path for r in fake.unknown_routes] == ["/no/such/route"]


async def test_late_callback_is_refused_like_discord_does() -> None:
    async with FakeDiscord(guilds=[FakeGuild(id=GUILD_ID)], interaction_deadline=0.1) as fake, fake.patch_discord():
        async with running_bot(fake):
            handle = await fake.slash("sleepy")
            with pytest.raises(LateInteraction):
                await handle.response()
        assert handle.late and handle.latency is not None and handle.latency > 0.1


async def test_latency_of_concurrent_interactions(fake: FakeDiscord, bot: TinyBot) -> None:
    handles = await asyncio.gather(*(fake.slash("ping") for _ in range(200)))
    await asyncio.gather(*(handle.response() for handle in handles))
    latencies = fake.latencies()
    assert len(latencies) == 200 and min(latencies) > 0
    assert all(handle.response_type == 4 for handle in handles)
    # How long they took (no request may wait on a dropped SYN's 1 s TCP retry, which is why the
    # fake listens with a deep backlog) is measured by benchmarks/bench_bot.py, not asserted here.
    fake.assert_clean()


class _Node:
    """Just enough of a pytest item for ``check_fake_at_teardown``: the markers it carries."""

    def __init__(self, *markers: str) -> None:
        self.markers = set(markers)

    def get_closest_marker(self, name: str) -> object:
        return name if name in self.markers else None


class _Request:
    def __init__(self, *markers: str) -> None:
        self.node = _Node(*markers)


@pytest.mark.fake_unchecked  # leaves a refusal and an unknown route behind on purpose
async def test_the_teardown_check_fails_unless_the_test_opted_out(fake: FakeDiscord) -> None:
    """The automatic teardown check is a check that can fail."""
    check_fake_at_teardown(fake, _Request())  # nothing happened yet: clean
    bot = TinyBot()
    with pytest.raises(discord.LoginFailure):
        await bot.login("not-the-token")
    await bot.close()
    with pytest.raises(AssertionError, match="refused: GET /users/@me -> 401"):
        check_fake_at_teardown(fake, _Request())
    check_fake_at_teardown(fake, _Request("fake_refusals"))
    async with aiohttp.ClientSession() as session:
        await session.get(fake.rest_base + "/no/such/route", headers={"Authorization": f"Bot {fake.token}"})
    with pytest.raises(AssertionError, match="unknown route"):
        check_fake_at_teardown(fake, _Request("fake_refusals"))  # refusals allowed, unknown routes never
    check_fake_at_teardown(fake, _Request("fake_unchecked"))
