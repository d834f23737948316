"""Interaction latency of the real bot under load, with and without a fine-tune running.

    .venv/bin/python benchmarks/bench_bot.py [--reps 3] [--concurrency 200]

DinoBot (unmodified, with one extra trivial ``/ping`` command as the floor) logs in to the fake
Discord from the tests on 127.0.0.1. Each phase injects ``concurrency`` interactions at once and
measures, per interaction, the time from the INTERACTION_CREATE frame leaving the fake to the
bot's callback arriving at it. The fake runs in the same process and event loop, so its own work
is inside every figure alike; the ratio against ``/ping`` in the same run is what to read.

The second part runs the real ``python -m bot`` as its own process against the fake (through
the tests-only ``DINOBOT_DISCORD_API_BASE``), so its figures hold the bot alone: the same
/dinoname bursts with and without a /retrain running, 200 /submit, and the bot's resident
memory (psutil, the child process) after all of it.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import discord  # noqa: E402
import psutil  # noqa: E402
from discord import app_commands  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import DinoBot  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.services.training.settings import TrainingSettings  # noqa: E402
from model import BASE_CHECKPOINT, FINE_TUNING, load_checkpoint, sample_names  # noqa: E402
from tests.support.fake_discord import FakeDiscord, FakeGuild, FakeUser  # noqa: E402

GUILD = 1000
OTHER = 2000


class BenchBot(DinoBot):
    async def setup_hook(self) -> None:
        @app_commands.command(name="ping", description="Trivial reply: the latency floor")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

        self.tree.add_command(ping)
        await super().setup_hook()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def burst(fake: FakeDiscord, command: str, options: dict, n: int, users: list[FakeUser],
                guild: int) -> list[float]:
    gc.collect()  # every phase starts from the same clean heap (the in-process fake keeps growing)
    handles = await asyncio.gather(*(fake.slash(command, options, user=users[i % len(users)], guild=guild)
                                     for i in range(n)))
    await asyncio.gather(*(h.response(timeout=30) for h in handles))
    return [h.latency for h in handles]


async def main(reps: int, concurrency: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    users = [FakeUser(id=10_000 + i, username=f"user{i}") for i in range(concurrency)]
    guilds = [FakeGuild(id=GUILD, name="Bench"), FakeGuild(id=OTHER, name="Other")]
    for guild in guilds:
        for user in users:
            guild.add_member(user)
    base = load_checkpoint(BASE_CHECKPOINT)
    server_names = [s.name for s in sample_names(base, 200, temperature=1.2, avoid=set())]
    with tempfile.TemporaryDirectory() as tmp:
        training = TrainingSettings(schedule_minutes=0, min_names=20, train_config=replace(FINE_TUNING, patience=99))
        config = Config(token="bench", data_dir=Path(tmp), training=training,
                        generate_rate=(10**6, 1.0), submit_rate=(10**6, 1.0), daily_limit=10**6)
        async with FakeDiscord(guilds=guilds, interaction_deadline=None) as fake, fake.patch_discord():
            bot = BenchBot(config, guild_ready_timeout=0.05)
            await bot.login(fake.token)
            task = asyncio.create_task(bot.connect())
            await fake.wait_for_ready()
            for i, name in enumerate(server_names):
                await bot.store.names.submit(GUILD, 50_000 + i, name)
            results: dict[str, list[tuple[float, float]]] = {"ping": [], "dinoname": [], "dinoname+ft": [],
                                                             "ping+ft": []}
            finetune_seconds, still_running = [], []
            for cmd, opts in (("ping", {}), ("dinoname", {"count": 5})):  # warm-up, not measured
                await burst(fake, cmd, opts, concurrency, users, OTHER)
            for _ in range(reps):
                for label, cmd, opts in (("ping", "ping", {}), ("dinoname", "dinoname", {"count": 5})):
                    lat = await burst(fake, cmd, opts, concurrency, users, OTHER)
                    results[label].append((percentile(lat, 0.5), percentile(lat, 0.99)))
                job = await bot.trainer.request(GUILD, None, "admin")
                await fake.wait_until(lambda job=job: job.snapshot.progress is not None, timeout=120, poll=0.01,
                                      what="the fine-tune's first epoch")  # in the thread, past its set-up
                for label, cmd, opts in (("dinoname+ft", "dinoname", {"count": 5}), ("ping+ft", "ping", {})):
                    lat = await burst(fake, cmd, opts, concurrency, users, OTHER)
                    results[label].append((percentile(lat, 0.5), percentile(lat, 0.99)))
                still_running.append(not job.done)
                outcome = await job.wait()
                finetune_seconds.append(outcome.seconds)
            rss = psutil.Process().memory_info().rss / 2**20
            gaps = fake.gateway.heartbeat_gaps()
            await bot.close()
            await task
            fake.assert_clean()
    report(results, concurrency, reps, finetune_seconds, still_running, rss, gaps)


async def real_process(concurrency: int, reps: int) -> None:
    """The shipped entry point in its own process: latency of /dinoname, and its memory."""
    users = [FakeUser(id=10_000 + i, username=f"user{i}") for i in range(concurrency)]
    admin = FakeUser(id=99, username="admin")
    guild = FakeGuild(id=GUILD, name="Bench", owner_id=admin.id)
    for user in users:
        guild.add_member(user)
    guild.add_member(admin)
    base = load_checkpoint(BASE_CHECKPOINT)
    server_names = [s.name for s in sample_names(base, concurrency, temperature=1.2)]
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeDiscord(guilds=[guild], interaction_deadline=None) as fake:
            env = {**os.environ, "DISCORD_TOKEN": fake.token, "DINOBOT_DATA_DIR": str(Path(tmp) / "data"),
                   "DINOBOT_DISCORD_API_BASE": fake.base_url, "DINOBOT_GENERATE_PER_30S": "1000",
                   "DINOBOT_FINETUNE_EVERY_MINUTES": "0", "DINOBOT_LOG_LEVEL": "WARNING"}
            child = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp, env=env,
                                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                await fake.wait_for_ready(timeout=60)
                handles = await asyncio.gather(*(fake.slash("submit", {"name": n}, user=u, guild=GUILD)
                                                 for n, u in zip(server_names, users, strict=True)))
                await asyncio.gather(*(h.response(timeout=60) for h in handles))
                await burst(fake, "dinoname", {"count": 5}, concurrency, users, GUILD)  # warm-up
                idle, busy = [], []
                for _ in range(reps):
                    idle.append(percentile(await burst(fake, "dinoname", {"count": 5}, concurrency, users, GUILD),
                                           0.99))
                    retrain = await fake.slash("retrain", user=admin, guild=GUILD)
                    await retrain.response(timeout=30)
                    await retrain.wait_for_edits(1, timeout=30)  # the fine-tune is under way
                    busy.append(percentile(await burst(fake, "dinoname", {"count": 5}, concurrency, users, GUILD),
                                           0.99))
                    await fake.wait_until(lambda r=retrain: r.edits and not r.edits[-1].get("components"),
                                          timeout=120, what="the /retrain summary")
                rss = psutil.Process(child.pid).memory_info().rss / 2**20
            finally:
                child.terminate()
                await child.wait()
    print(f"\nreal `python -m bot` process, {concurrency} concurrent /dinoname count:5 after 200 /submit:")
    print(f"p99 {statistics.median(idle) * 1e3:.1f} ms idle, {statistics.median(busy) * 1e3:.1f} ms during a "
          f"/retrain (medians of {reps}); bot resident memory {rss:.0f} MiB (target <= 150)")


def report(results, concurrency, reps, finetune_seconds, still_running, rss, gaps) -> None:
    print(f"{concurrency} concurrent interactions per phase, {reps} repetitions, medians of per-rep p50/p99")
    floor_p99 = statistics.median(p99 for _, p99 in results["ping"])
    for label, runs in results.items():
        p50 = statistics.median(p50 for p50, _ in runs) * 1e3
        p99 = statistics.median(p99 for _, p99 in runs) * 1e3
        spread = ", ".join(f"{q99 * 1e3:.0f}" for _, q99 in runs)
        print(f"{label:<12} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   p99 / ping p99 {p99 / 1e3 / floor_p99:4.2f}×"
              f"   (p99 per rep: {spread} ms)")
    print(f"fine-tune of 200 names still running after every loaded phase: {all(still_running)}; "
          f"fine-tune took {statistics.median(finetune_seconds):.1f} s (median)")
    print(f"longest gap between heartbeats: {max(gaps):.2f} s" if gaps else "no heartbeats recorded")
    print(f"resident memory after the load: {rss:.0f} MiB (whole process)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.reps, args.concurrency))
    asyncio.run(real_process(args.concurrency, args.reps))
