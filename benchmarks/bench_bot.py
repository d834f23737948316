"""Interaction latency of the real bot under load, with and without a fine-tune running.

    .venv/bin/python benchmarks/bench_bot.py [--reps 3] [--concurrency 200] [--names 2000]

DinoBot (unmodified, with one extra trivial ``/ping`` command as the floor: ``ping_bot.py``)
logs in to the fake Discord from the tests on 127.0.0.1. Each phase injects ``concurrency``
interactions at once and measures, per interaction, the time from the INTERACTION_CREATE frame
leaving the fake to the bot's callback arriving at it. Two kinds of ``/dinoname`` burst:

- plain: ``count:5``, which the bot serves from its reservoir of pre-drawn names;
- uncached: every request its own prefix and temperature, so nothing can be pre-drawn or shared
  and every name is sampled while the member waits.

The first part runs the bot in the fake's process and event loop, so the fake's own work is
inside every figure alike. The second part runs ``ping_bot.py`` (the real ``python -m bot`` plus
``/ping``) as its own process against the fake, so its figures hold the bot alone; that is where
the target is judged: ``/dinoname`` p99 during a fine-tune ≤ 1.5 × the ``/ping`` p99. Every
phase also reports its slowest answer against Discord's 3 s deadline, and the bot's resident
memory is read at the end (psutil, the child process).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import (  # noqa: E402
    DEADLINE,
    bot_in_process,
    bot_process,
    burst,
    distinct_names,
    percentile,
    shows_an_epoch,
    submit_each,
    train_prefixes,
)
from ping_bot import PingBot  # noqa: E402

from bot.config import Config  # noqa: E402
from bot.services.training.settings import TrainingSettings  # noqa: E402
from model import BASE_CHECKPOINT, FINE_TUNING, load_checkpoint  # noqa: E402
from tests.support.fake_discord import FakeDiscord, FakeGuild, FakeUser  # noqa: E402

GUILD = 1000
OTHER = 2000
PREFIXES = train_prefixes()
PLAIN = {"count": 5}

Phase = tuple[str, dict | object]  # (command, options or a function of the request index)
Figures = dict[str, list[tuple[float, float, float]]]  # label -> per repetition (p50, p99, max)


def uncached(i: int) -> dict:
    """Request ``i`` of a burst: a prefix and a temperature of its own (every three-letter start
    of a training name, 16 temperatures: no two requests of a burst ask for the same)."""
    return {"prefix": PREFIXES[i % len(PREFIXES)], "count": 5, "temperature": round(0.5 + (i % 16) * 0.1, 2)}


IDLE: dict[str, Phase] = {"ping": ("ping", {}), "dinoname": ("dinoname", PLAIN),
                          "uncached": ("dinoname", uncached)}
LOADED: dict[str, Phase] = {"dinoname+ft": ("dinoname", PLAIN), "uncached+ft": ("dinoname", uncached),
                            "ping+ft": ("ping", {})}


async def measure(fake, phases: dict[str, Phase], figures: Figures, n: int, users, guild: int,
                  running=None, through: collections.Counter | None = None) -> None:
    """One burst per phase; with ``running``, count the phases a fine-tune outlasted."""
    for label, (command, options) in phases.items():
        lat = await burst(fake, command, options, n, users, guild)
        figures.setdefault(label, []).append((percentile(lat, 0.5), percentile(lat, 0.99), max(lat)))
        if running is not None and through is not None:
            through[label] += bool(running())


def members(n: int) -> list[FakeUser]:
    return [FakeUser(id=10_000 + i, username=f"user{i}") for i in range(n)]


async def in_process(reps: int, concurrency: int, names: int) -> None:
    users = members(concurrency)
    guilds = [FakeGuild(id=GUILD, name="Bench"), FakeGuild(id=OTHER, name="Other")]
    for guild in guilds:
        for user in users:
            guild.add_member(user)
    server_names = distinct_names(load_checkpoint(BASE_CHECKPOINT), names, seed=3, temperature=1.2)
    with tempfile.TemporaryDirectory() as tmp:
        training = TrainingSettings(schedule_minutes=0, min_names=20,
                                    train_config=replace(FINE_TUNING, epochs=10, patience=99))
        config = Config(token="bench", data_dir=Path(tmp), training=training,
                        generate_rate=(10**6, 1.0), submit_rate=(10**6, 1.0), daily_limit=10**6)
        async with FakeDiscord(guilds=guilds, interaction_deadline=None) as fake, fake.patch_discord():
            async with bot_in_process(fake, PingBot(config, guild_ready_timeout=0.05)) as bot:
                await submit_each(bot.store, GUILD, server_names)
                figures: Figures = {}
                finetune_seconds, through = [], collections.Counter()
                await measure(fake, IDLE, {}, concurrency, users, OTHER)  # warm-up, not measured
                for _ in range(reps):
                    await measure(fake, IDLE, figures, concurrency, users, OTHER)
                    job = await bot.trainer.request(GUILD, None, "admin")
                    await fake.wait_until(lambda job=job: job.snapshot.progress is not None, timeout=120, poll=0.01,
                                          what="the fine-tune's first epoch")  # in the thread, past its set-up
                    await measure(fake, LOADED, figures, concurrency, users, OTHER, lambda j=job: not j.done, through)
                    finetune_seconds.append((await job.wait()).seconds)
                rss = psutil.Process().memory_info().rss / 2**20
                gaps = fake.gateway.heartbeat_gaps()
            fake.assert_clean()
    print(f"In the fake's process: {concurrency} concurrent interactions per phase, {reps} repetitions, "
          f"medians of per-repetition p50/p99, the slowest of all repetitions; fine-tunes of {names} names")
    table(figures)
    print(f"{outlasted(through, reps)}; a fine-tune took {statistics.median(finetune_seconds):.1f} s (median)")
    print(f"longest gap between heartbeats: {max(gaps):.2f} s" if gaps else "no heartbeats recorded")
    print(f"resident memory after the load: {rss:.0f} MiB (whole process, the fake included)")


async def real_process(reps: int, concurrency: int, names: int) -> None:
    """``ping_bot.py`` (the shipped entry point plus /ping) in its own process."""
    users = members(concurrency)
    admin = FakeUser(id=99, username="admin")
    guild = FakeGuild(id=GUILD, name="Bench", owner_id=admin.id)
    for user in (*users, admin):
        guild.add_member(user)
    server_names = distinct_names(load_checkpoint(BASE_CHECKPOINT), names, seed=4, temperature=1.2)
    env = {"DINOBOT_GENERATE_PER_30S": "1000", "DINOBOT_SUBMIT_PER_MINUTE": "1000",  # the highest allowed
           "DINOBOT_DAILY_LIMIT": "10000"}
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeDiscord(guilds=[guild], interaction_deadline=None) as fake, \
                bot_process(fake, Path(tmp) / "data", env, script=HERE / "ping_bot.py") as bot:
            for start in range(0, len(server_names), concurrency):
                chunk = server_names[start:start + concurrency]
                handles = await asyncio.gather(*(fake.slash("submit", {"name": name}, user=user, guild=GUILD)
                                                 for name, user in zip(chunk, users, strict=False)))
                await asyncio.gather(*(h.response(timeout=60) for h in handles))
            await measure(fake, IDLE, {}, concurrency, users, GUILD)  # warm-up
            figures: Figures = {}
            through = collections.Counter()
            for _ in range(reps):
                await measure(fake, IDLE, figures, concurrency, users, GUILD)
                retrain = await fake.slash("retrain", user=admin, guild=GUILD)
                await retrain.response(timeout=30)
                await retrain.wait_for(lambda r: shows_an_epoch(r.edits),
                                       timeout=60, what="the first epoch")  # the fine-tune is under way
                # Running while its reply still has the Cancel button (the final edit is never held back).
                await measure(fake, LOADED, figures, concurrency, users, GUILD,
                              lambda r=retrain: bool(r.edits[-1].get("components")), through)
                await fake.wait_until(lambda r=retrain: r.edits and not r.edits[-1].get("components"),
                                      timeout=300, what="the /retrain summary")
            rss = bot.rss_mib()
            errors = bot.errors()
        fake.assert_clean()
    print(f"\nThe real bot in its own process (ping_bot.py), {concurrency} concurrent interactions per phase "
          f"after {names} /submit, {reps} repetitions; loaded phases run during a /retrain:")
    table(figures)
    verdict = statistics.median(p99 for _, p99, _ in figures["dinoname+ft"]) / statistics.median(
        p99 for _, p99, _ in figures["ping"])
    print(f"/dinoname p99 during a fine-tune / /ping p99: {verdict:.2f}× (target ≤ 1.5×); {outlasted(through, reps)}")
    print(f"bot resident memory {rss:.0f} MiB (target ≤ 150); log lines at ERROR: {len(errors)}")


def outlasted(through: collections.Counter, reps: int) -> str:
    """Whether the loaded phases really ran during a fine-tune: a figure taken after it ended flatters."""
    return "the fine-tune was still running at the end of " + ", ".join(
        f"{label} {through[label]}/{reps}" for label in LOADED)


def table(figures: Figures) -> None:
    floor = statistics.median(p99 for _, p99, _ in figures["ping"])
    print(f"{'phase':<13}{'p50':>9}{'p99':>10}{'max':>10}   p99 / ping p99   deadline   (p99 per rep)")
    for label, runs in figures.items():
        p50 = statistics.median(r[0] for r in runs)
        p99 = statistics.median(r[1] for r in runs)
        worst = max(r[2] for r in runs)
        ok = "ok" if worst <= DEADLINE else "LATE"
        spread = ", ".join(f"{r[1] * 1e3:.0f}" for r in runs)
        print(f"{label:<13}{p50 * 1e3:7.1f} ms{p99 * 1e3:8.1f} ms{worst * 1e3:8.0f} ms   {p99 / floor:13.2f}×"
              f"   {ok:>8}   ({spread} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--names", type=int, default=2000, help="server names the fine-tunes train on")
    args = parser.parse_args()
    asyncio.run(in_process(args.reps, args.concurrency, args.names))
    asyncio.run(real_process(args.reps, args.concurrency, args.names))
