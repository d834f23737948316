"""Running at scale, measured: PostgreSQL against SQLite, and two bot processes against one.

    .venv/bin/python benchmarks/bench_cluster.py [--reps 5] [store|cluster]

Part ``store``: accepted submissions per second, SQLite (WAL, ``synchronous=FULL``) against
PostgreSQL 15 (a throwaway cluster with the server's defaults: ``fsync=on``,
``synchronous_commit=on``), both in the same folder on the same disk, through the same
``Store`` API. Each run opens a fresh database (a fresh schema on PostgreSQL) and submits
``--count`` names from distinct members; one submitter awaiting each name (the worst case), or
16 at once. Backends alternate within every repetition; medians of ``--reps``.

Part ``cluster``: ``/dinoname count:5`` latency of the real ``python -m bot`` against the fake
Discord (in this process), from the INTERACTION_CREATE frame to the bot's callback. One bot
process running all shards of its own fake Discord gets ``--concurrency`` interactions at once;
two processes (shards 0 and 1 of 2) of a second fake Discord get ``--concurrency`` each, at the
same moment, in one server per shard. All three processes run for the whole part on one
PostgreSQL, so each configuration's bursts see the same background, and the two alternate
within every repetition. The p99 of each burst, then the median over repetitions.

Read it for what it is: every process here shares this machine's two cores with the others and
with the fake Discord, so two processes on one machine cannot be faster than one; the figure
says what a second process costs on the same machine, and the README says what a second
machine would change.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import asyncpg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]

from common import fsync_latency_ms, percentile, submit_concurrently  # noqa: E402

from bot.services.store import DatabaseTarget, Store  # noqa: E402
from tests.support.fake_discord import FakeDiscord, FakeGuild, FakeUser  # noqa: E402
from tests.support.postgres import PostgresServer, remove_cluster, start_cluster  # noqa: E402

GUILD = 1
SERVER_0 = (10 << 22) + 1000  # shard 0 of 2
SERVER_1 = (11 << 22) + 2000  # shard 1 of 2
SOLO = 3000




async def fresh_schema(server: PostgresServer) -> str:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await admin.close()
    return f"{server.url()}?search_path={schema}"


# ---------------------------------------------------------------------- part 1: the store


async def submissions_per_s(target: DatabaseTarget, count: int, concurrency: int) -> float:
    async with await Store.open(target, daily_limit=20) as store:
        elapsed = await submit_concurrently(store, GUILD, count, concurrency)
        if await store.names.count(GUILD) != count:
            raise RuntimeError("not every submission was accepted")
    return count / elapsed


async def store_part(server: PostgresServer, workdir: Path, reps: int, count: int) -> None:
    print(f"submissions per second, {count} per run, median of {reps} interleaved repetitions; "
          f"fsync of 4 KiB here: {fsync_latency_ms(workdir):.3f} ms "
          "(SQLite and the PostgreSQL cluster share this disk)")
    rates: dict[tuple[str, int], list[float]] = {}
    for rep in range(reps):
        for concurrency in (1, 16):
            for backend in (("sqlite", "postgresql") if rep % 2 == 0 else ("postgresql", "sqlite")):
                target = (DatabaseTarget.sqlite(workdir / f"{uuid.uuid4().hex}.sqlite3") if backend == "sqlite"
                          else DatabaseTarget("postgresql", await fresh_schema(server)))
                rate = await submissions_per_s(target, count, concurrency)
                rates.setdefault((backend, concurrency), []).append(rate)
    print(f"{'backend':<12}{'submitters':>11}{'median/s':>10}{'min/s':>8}{'max/s':>8}")
    for (backend, concurrency), values in rates.items():
        print(f"{backend:<12}{concurrency:>11}{statistics.median(values):>10.0f}{min(values):>8.0f}"
              f"{max(values):>8.0f}")
    for concurrency in (1, 16):
        ratio = statistics.median(rates["postgresql", concurrency]) / statistics.median(rates["sqlite", concurrency])
        print(f"PostgreSQL / SQLite with {concurrency} submitter(s): {ratio:.2f}x")


# ---------------------------------------------------------------------- part 2: the cluster


def bot_env(fake: FakeDiscord, url: str, data: Path, shards: tuple[str, str] | None) -> dict[str, str]:
    env = {**os.environ, "DISCORD_TOKEN": fake.token, "DINOBOT_DISCORD_API_BASE": fake.base_url,
           "DINOBOT_DATABASE_URL": url, "DINOBOT_DATA_DIR": str(data), "DINOBOT_GENERATE_PER_30S": "1000",
           "DINOBOT_FINETUNE_EVERY_MINUTES": "0", "DINOBOT_LOG_LEVEL": "WARNING"}
    if shards is not None:
        env["DINOBOT_SHARD_COUNT"], env["DINOBOT_SHARD_IDS"] = shards
    return env


async def burst(fake: FakeDiscord, guild: int, users: list[FakeUser]) -> list[float]:
    handles = await asyncio.gather(*(fake.slash("dinoname", {"count": 5}, user=user, guild=guild) for user in users))
    await asyncio.gather(*(h.response(timeout=60) for h in handles))
    return [h.latency for h in handles]


def server_with(guild_id: int, users: list[FakeUser]) -> FakeGuild:
    guild = FakeGuild(id=guild_id, name=f"bench {guild_id}")
    for user in users:
        guild.add_member(user)
    return guild


async def cluster_part(server: PostgresServer, workdir: Path, reps: int, concurrency: int) -> None:
    users = [FakeUser(id=10_000 + i, username=f"user{i}") for i in range(concurrency)]
    url = await fresh_schema(server)
    async with contextlib.AsyncExitStack() as stack:
        one = await stack.enter_async_context(FakeDiscord(guilds=[server_with(SOLO, users)],
                                                          interaction_deadline=None))
        two = await stack.enter_async_context(FakeDiscord(
            guilds=[server_with(SERVER_0, users), server_with(SERVER_1, users)], interaction_deadline=None,
            recommended_shards=2))
        specs = [(one, None, "solo"), (two, ("2", "0"), "shard0"), (two, ("2", "1"), "shard1")]
        children = []
        try:
            for fake, shards, name in specs:
                env = bot_env(fake, url, workdir / name, shards)
                with open(workdir / f"{name}.log", "wb") as console:
                    children.append(await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "bot", cwd=workdir, env=env, stdout=console,
                        stderr=subprocess.STDOUT))
            for ready in (one.wait_for_ready(timeout=90), two.wait_for_ready(shard_id=0, timeout=90),
                          two.wait_for_ready(shard_id=1, timeout=90)):
                try:
                    await ready
                except Exception:
                    for _, _, name in specs:
                        print(f"--- {name} ---\n{(workdir / f'{name}.log').read_text(errors='replace')[-3000:]}")
                    raise
            await burst(one, SOLO, users)  # warm-up, not measured
            await asyncio.gather(burst(two, SERVER_0, users), burst(two, SERVER_1, users))
            solo, pair, per_process = [], [], []
            for rep in range(reps):
                for config in (("one", "two") if rep % 2 == 0 else ("two", "one")):
                    gc.collect()
                    if config == "one":
                        solo.append(percentile(await burst(one, SOLO, users), 0.99))
                    else:
                        first, second = await asyncio.gather(burst(two, SERVER_0, users), burst(two, SERVER_1, users))
                        pair.append(percentile(first + second, 0.99))
                        per_process.append((percentile(first, 0.99), percentile(second, 0.99)))
        finally:
            for child in children:
                if child.returncode is None:
                    child.terminate()
            await asyncio.gather(*(child.wait() for child in children))
    one_p99, two_p99 = statistics.median(solo) * 1e3, statistics.median(pair) * 1e3
    print(f"\n/dinoname count:5 p99, median of {reps} interleaved repetitions (real python -m bot processes, "
          "PostgreSQL)")
    print(f"one process, {concurrency} at once:                 p99 {one_p99:7.1f} ms   "
          f"(per rep: {', '.join(f'{v * 1e3:.0f}' for v in solo)})")
    print(f"two processes (shards 0, 1 of 2), 2 x {concurrency} at once: p99 {two_p99:7.1f} ms   "
          f"(per rep: {', '.join(f'{v * 1e3:.0f}' for v in pair)})")
    print("  per process p99 (shard 0 / shard 1): "
          + ", ".join(f"{a * 1e3:.0f}/{b * 1e3:.0f}" for a, b in per_process))
    print(f"two processes under twice the load / one process: {two_p99 / one_p99:.2f}x")


async def main(parts: list[str], reps: int, count: int, concurrency: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    server = await asyncio.to_thread(start_cluster)
    try:
        if "store" in parts:
            await store_part(server, workdir, reps, count)
        if "cluster" in parts:
            await cluster_part(server, workdir, reps, concurrency)
    finally:
        await asyncio.to_thread(remove_cluster, server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help="store and/or cluster (default: both)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--count", type=int, default=3000, help="submissions per store run")
    parser.add_argument("--concurrency", type=int, default=200, help="interactions per process per burst")
    args = parser.parse_args()
    if set(args.parts) - {"store", "cluster"}:
        parser.error(f"parts are store and cluster, not {' '.join(args.parts)}")
    asyncio.run(main(args.parts or ["store", "cluster"], args.reps, args.count, args.concurrency))
