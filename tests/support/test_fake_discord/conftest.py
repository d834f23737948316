"""The fake with two guilds, and the tiny bot logged in to it, for the fake Discord's own tests."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from tests.support.fake_checks import check_fake_at_teardown
from tests.support.fake_discord import FakeDiscord, FakeGuild
from tests.support.test_fake_discord.tiny_bot import GUILD_ID, OTHER_GUILD_ID, TinyBot, running_bot


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    guilds = [FakeGuild(id=GUILD_ID, name="Dino Club"), FakeGuild(id=OTHER_GUILD_ID, name="Other Club")]
    async with FakeDiscord(guilds=guilds) as server, server.patch_discord():
        yield server
    check_fake_at_teardown(server, request)


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[TinyBot]:
    async with running_bot(fake) as running:
        yield running
