"""The whole product, as users meet it, through the real discord.py client and the fake Discord.

Members submit 50 names in one server with ``/submit``, an admin runs ``/retrain``, and from then
on that server (and only that server) is answered by its own model, also after a restart. Plus
what must hold around it: a dropped gateway connection is resumed, heartbeats keep coming
while a fine-tune runs, and admin commands are refused politely in DMs.
"""
from __future__ import annotations

import itertools
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from bot.services.training.jobs import JobStatus
from tests.support.fake_discord import FakeDiscord
from tests.support.harness import (
    ADMIN,
    GUILD_A,
    GUILD_B,
    MEMBER,
    OTHER_MEMBER,
    Harness,
    long_running,
    make_config,
    running,
)

EPHEMERAL = 64
STARTS = ("glim", "quil", "bron", "zeph", "moss", "velv", "crum", "thist", "pebb", "rumbl", "snorf", "wib")
ENDS = ("osaurus", "odon", "oraptor", "ops", "onyx")


def invented_names(known: frozenset[str], count: int = 50) -> list[str]:
    """``count`` dinosaur-like names that are not real dinosaurs (the store refuses those)."""
    names = (start + end for start, end in itertools.product(STARTS, ENDS))
    return list(itertools.islice((n for n in names if n not in known), count))


def footer(reply: dict) -> str:
    return reply["data"]["embeds"][0]["footer"]["text"]


def info_fields(reply: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in reply["data"]["embeds"][0]["fields"]}


async def ask(fake, command: str, options: dict | None = None, **kwargs) -> dict:
    return await (await fake.slash(command, options, **kwargs)).response()


async def submit_all(fake, names: list[str], guild: int) -> None:
    """Each name via /submit, spread over three members (each has a daily limit)."""
    members = itertools.cycle((ADMIN, MEMBER, OTHER_MEMBER))
    for name in names:
        reply = await ask(fake, "submit", {"name": name.capitalize()}, guild=guild, user=next(members))
        assert reply["type"] == 4 and "joins this server's names" in reply["data"]["content"], reply


@asynccontextmanager
async def slow_bot_with_names(fake: FakeDiscord, data_dir: Path, count: int) -> AsyncIterator[Harness]:
    """A running bot whose fine-tunes go on until cancelled, with ``count`` names submitted in
    GUILD_A (stored directly, one member each), so a fine-tune can be started at once."""
    async with running(fake, long_running(make_config(data_dir))) as harness:
        for user, name in enumerate(invented_names(harness.bot.known_names, count)):
            await harness.bot.store.names.submit(GUILD_A, 30_000 + user, name)
        yield harness


async def retrain(fake, guild: int) -> dict:
    """Run /retrain as the admin and return the final (summary) edit."""
    handle = await fake.slash("retrain", guild=guild, user=ADMIN)
    await handle.response()
    await handle.wait_for(lambda h: h.edits and not h.edits[-1].get("components", [None]), timeout=15,
                          what="the /retrain summary")
    return handle.edits[-1]


async def test_submit_retrain_and_only_that_server_changes(dino):
    fake = dino.fake
    names = invented_names(dino.bot.known_names)
    await submit_all(fake, names, GUILD_A)
    assert await dino.bot.store.names.count(GUILD_A) == 50 and await dino.bot.store.names.count(GUILD_B) == 0

    summary = (await retrain(fake, GUILD_A))["embeds"][0]
    assert summary["title"] == "✅ New model promoted: v1", summary
    assert {f["name"]: f["value"] for f in summary["fields"]}["Names used"] == "50 (50 new)"

    await assert_served(fake, GUILD_A, "this server's model v1")
    await assert_served(fake, GUILD_B, "the base model")
    info = info_fields(await ask(fake, "dinoinfo", guild=GUILD_A))
    assert info["Model"] == "This server's model v1" and info["Fine-tuned on"] == "50 names from this server"
    assert info_fields(await ask(fake, "dinoinfo", guild=GUILD_B))["Model"] == "The base model"

    await dino.restart()
    await assert_served(fake, GUILD_A, "this server's model v1")
    await assert_served(fake, GUILD_B, "the base model")
    fake.assert_clean()


async def assert_served(fake, guild: int, label: str) -> None:
    reply = await ask(fake, "dinoname", {"count": 3}, guild=guild, user=MEMBER)
    assert footer(reply) == f"From {label}"
    names = re.findall(r"\*\*([A-Za-z]+)", reply["data"]["embeds"][0]["description"])
    assert len(names) == 3


async def test_a_dropped_gateway_is_resumed_and_a_running_fine_tune_carries_on(fake, tmp_path):
    async with slow_bot_with_names(fake, tmp_path / "data", 10) as harness:
        bot = harness.bot
        handle = await fake.slash("retrain", user=ADMIN)
        await handle.response()
        await handle.wait_for_edits(1)
        job = bot.trainer.job(GUILD_A)

        await fake.drop_connection()
        await fake.wait_for_resume()
        reply = await ask(fake, "dinoname", guild=GUILD_B, user=MEMBER)
        assert reply["type"] == 4 and footer(reply) == "From the base model"
        edits = len(handle.edits)
        await handle.wait_for_edits(edits + 1, timeout=5)  # progress still arrives: REST needs no gateway
        assert job.status is JobStatus.RUNNING and bot.trainer.job(GUILD_A) is job
        assert fake.gateway.ready_count == 1  # resumed, not re-identified

        job.cancel("test over")
        await job.wait()
        fake.assert_clean()


async def test_heartbeats_and_training_go_on_side_by_side(fake, tmp_path):
    """Order, not a stopwatch: heartbeats keep arriving on the same connection while the epochs
    advance, so neither starves the other. (How late a heartbeat may be is a benchmark figure:
    ``benchmarks/bench_bot.py`` reports the longest gap.)"""
    async with slow_bot_with_names(fake, tmp_path / "data", 50) as harness:
        bot = harness.bot
        job = await bot.trainer.request(GUILD_A, ADMIN.id)
        await fake.wait_until(lambda: job.snapshot.progress is not None, timeout=10, what="training under way")
        connection = fake.gateway.current
        beats = len(connection.heartbeats)
        epochs = []
        for more in range(1, 6):
            await fake.wait_until(lambda n=beats + more: len(connection.heartbeats) >= n, timeout=10,
                                  what=f"heartbeat {more} during the fine-tune")
            p = job.snapshot.progress
            epochs.append(p.member * p.epochs + p.epoch)
        assert epochs == sorted(epochs) and epochs[-1] > epochs[0], epochs  # training moved between beats
        assert job.status is JobStatus.RUNNING and fake.gateway.current is connection
        assert fake.gateway.ready_count == 1  # never reconnected
        job.cancel("test over")
        await job.wait()


async def test_admin_commands_are_refused_politely_in_dms(dino):
    for command, options in (("retrain", None), ("settings", None), ("review", None),
                             ("names remove", {"name": "quilodon"}), ("submit", {"name": "quilodon"})):
        reply = await ask(dino.fake, command, options, guild=None, user=ADMIN)
        assert reply["type"] == 4 and reply["data"]["flags"] & EPHEMERAL, command
        assert "only works in a server" in reply["data"]["content"], (command, reply)
    assert dino.bot.trainer.queued_guilds() == []
    dino.fake.assert_clean()
