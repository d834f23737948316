"""Two ``python -m bot`` processes, shards 0 and 1 of 2, one PostgreSQL, the fake Discord.

The fake sends each server's events only to the connection of its shard, ``(guild_id >> 22) % 2``,
so ``SERVER_0`` is process 0's and ``SERVER_1`` is process 1's, exactly as on Discord. The story:

1. names are submitted in ``SERVER_1`` and ``/retrain`` promotes v1 there, while process 0
   keeps answering ``/dinoname`` in ``SERVER_0`` the whole time;
2. more names arrive, a second ``/retrain`` starts, and process 1 is killed with SIGKILL as soon
   as the database shows its job claimed and running (a fine-tune of 90 names takes about a second
   from there; afterwards the database must still show the job running and no v2);
3. process 0 answers on as if nothing happened; process 1 is restarted and serves v1, the last
   good model; its job runs again by itself once the dead process's lease expires (6 s here)
   and promotes v2; every name whose ``/submit`` was answered is in the database.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator

import pytest

from bot.services.store import JobState, Store, VersionStatus
from tests.support.fake_discord import FakeDiscord, shard_for
from tests.support.harness import ADMIN, MEMBER, OWNER, make_guild
from tests.support.name_factory import name_for

SERVER_0 = (10 << 22) + 1000  # shard 0 of 2
SERVER_1 = (11 << 22) + 2000  # shard 1 of 2
LEASE_SECONDS = 6


class BotProcess:
    """One ``python -m bot`` running some shards, its console in a file for the failure message."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path) -> None:
        self.name, self.env, self.cwd = name, env, cwd
        self.log = cwd / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log, "ab") as console:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=self.cwd, env=self.env, stdout=console, stderr=subprocess.STDOUT)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def stop(self) -> int | None:
        """SIGTERM and wait (SIGKILL if it hangs); the exit code."""
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=15)
        except asyncio.TimeoutError:
            self.process.kill()
            return await self.process.wait()

    async def ready(self, fake: FakeDiscord, shard: int, count: int = 1) -> None:
        """Wait for its shard's READY; fail at once (with its console) if the process ends first."""
        assert self.process is not None
        ready = asyncio.ensure_future(fake.wait_for_ready(count=count, shard_id=shard, timeout=60))
        ended = asyncio.ensure_future(self.process.wait())
        await asyncio.wait({ready, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
        ended.cancel()
        ready.result()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    guilds = [make_guild(SERVER_0, "Shard Zero Club"), make_guild(SERVER_1, "Shard One Society")]
    async with FakeDiscord(guilds=guilds, owner=OWNER, heartbeat_interval=0.5, recommended_shards=2) as server:
        yield server


def cluster_env(fake: FakeDiscord, url: str, tmp_path: Path, shard: int) -> dict[str, str]:
    return {**os.environ, "DISCORD_TOKEN": fake.token, "DINOBOT_DISCORD_API_BASE": fake.base_url,
            "DINOBOT_DATABASE_URL": url, "DINOBOT_SHARD_COUNT": "2", "DINOBOT_SHARD_IDS": str(shard),
            "DINOBOT_DATA_DIR": str(tmp_path / f"process-{shard}"), "DINOBOT_FINETUNE_MIN_NAMES": "5",
            "DINOBOT_FINETUNE_EVERY_MINUTES": "0", "DINOBOT_PROMOTE_TOLERANCE": "1",
            "DINOBOT_FINETUNE_LEASE_SECONDS": str(LEASE_SECONDS), "DINOBOT_DAILY_LIMIT": "1000",
            "DINOBOT_SUBMIT_PER_MINUTE": "1000", "DINOBOT_GENERATE_PER_30S": "1000", "OMP_NUM_THREADS": "1"}


async def submit(fake: FakeDiscord, names: list[str], guild: int) -> list[str]:
    """Submit names; those the bot acknowledged (answered with its public "saved" message)."""
    handles = [await fake.slash("submit", {"name": name}, user=MEMBER, guild=guild) for name in names]
    replies = await asyncio.gather(*(h.response(timeout=30) for h in handles))
    return [name for name, reply in zip(names, replies, strict=True) if reply["type"] == 4
            and not reply["data"].get("flags", 0) & 64]


async def served_version(fake: FakeDiscord, guild: int) -> str:
    reply = await (await fake.slash("dinoname", {"count": 2}, user=MEMBER, guild=guild)).response(timeout=30)
    assert reply["type"] == 4, reply
    return reply["data"]["embeds"][0]["footer"]["text"]


def summary_of(handle) -> dict | None:
    if handle.edits and not handle.edits[-1].get("components"):
        return handle.edits[-1]["embeds"][0]
    return None


async def until_running(store: Store, guild: int, timeout: float = 60) -> None:
    """Poll the database until a process has claimed the guild's fine-tune and is running it."""
    deadline = time.monotonic() + timeout
    while not any(job.guild_id == guild and job.state is JobState.RUNNING for job in await store.jobs.active()):
        assert time.monotonic() < deadline, "the fine-tune never started"
        await asyncio.sleep(0.01)


async def keep_asking(fake: FakeDiscord, guild: int, answered: list[float], stop: asyncio.Event) -> None:
    """Process 0's members keep using /dinoname; note when each answer arrived."""
    while not stop.is_set():
        footer = await served_version(fake, guild)
        assert "base model" in footer
        answered.append(time.monotonic())
        await asyncio.sleep(0.05)


async def test_two_processes_share_one_postgres_and_survive_a_kill_mid_fine_tune(fake, pg_url, tmp_path):
    assert (shard_for(SERVER_0, 2), shard_for(SERVER_1, 2)) == (0, 1)
    processes = [BotProcess(f"process-{shard}", cluster_env(fake, pg_url, tmp_path, shard), tmp_path)
                 for shard in (0, 1)]
    first, second = processes
    try:
        await asyncio.gather(*(p.start() for p in processes))
        await first.ready(fake, 0)
        await second.ready(fake, 1)

        # 1. Names in process 1's server, v1 promoted, process 0 answering all along.
        acked = await submit(fake, [name_for(i) for i in range(8)], SERVER_1)
        assert len(acked) == 8
        stop, answered = asyncio.Event(), []
        asker = asyncio.create_task(keep_asking(fake, SERVER_0, answered, stop))
        retrain = await fake.slash("retrain", user=ADMIN, guild=SERVER_1)
        await retrain.response(timeout=30)
        started = time.monotonic()
        await fake.wait_until(lambda: summary_of(retrain) is not None, timeout=60, what="the first summary")
        finished = time.monotonic()
        stop.set()
        await asker
        assert "promoted" in summary_of(retrain)["title"].lower(), summary_of(retrain)
        assert any(started < t < finished for t in answered), "process 0 answered during the fine-tune"
        assert "model v1" in await served_version(fake, SERVER_1)

        # 2. More names; a second fine-tune; kill -9 process 1 in the middle of it.
        acked += await submit(fake, [name_for(i) for i in range(8, 90)], SERVER_1)
        assert len(acked) == 90
        async with await Store.open(pg_url) as store:
            retrain = await fake.slash("retrain", user=ADMIN, guild=SERVER_1)
            await retrain.response(timeout=30)
            await until_running(store, SERVER_1)
            await second.kill()
            (job,) = await store.jobs.active()
            assert job.guild_id == SERVER_1 and job.state is JobState.RUNNING  # killed mid-run
            assert [v.version for v in await store.versions.list(SERVER_1)] == [1]

        # 3. Process 0 carries on; process 1 comes back on v1, then its job runs again.
        assert "base model" in await served_version(fake, SERVER_0)
        await second.start()
        await second.ready(fake, 1, count=2)
        assert "model v1" in await served_version(fake, SERVER_1)  # the last good model
        async with await Store.open(pg_url) as store:
            deadline = time.monotonic() + 60
            while (await store.jobs.get(job.id)).state.active and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            again = await store.jobs.get(job.id)
            assert (again.state, again.version, again.attempts) == (JobState.DONE, 2, 2), again
            versions = await store.versions.list(SERVER_1)
            assert [(v.version, v.status) for v in versions] == [(1, VersionStatus.PROMOTED),
                                                                (2, VersionStatus.PROMOTED)]
            assert sorted(await store.names.approved(SERVER_1)) == sorted(acked)  # nothing acknowledged lost
            assert await store.names.approved(SERVER_0) == []
        assert "model v2" in await served_version(fake, SERVER_1)
        assert await asyncio.gather(*(p.stop() for p in processes)) == [0, 0]
    except BaseException:
        for process in processes:
            with contextlib.suppress(Exception):
                await process.stop()
        print("\n\n".join(f"--- {p.name} ---\n{p.output()[-6000:]}" for p in processes))
        raise
