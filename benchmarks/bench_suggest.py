"""Autocomplete of ``/dinoname prefix:`` under load, against Discord's 3 s deadline.

    .venv/bin/python benchmarks/bench_suggest.py [--reps 3] [--concurrency 200]

DinoBot (unmodified) logs in to the fake Discord on 127.0.0.1, in this process. Each phase
injects ``concurrency`` autocomplete interactions at once, each for a different prefix (what
many members typing at the same moment look like), and measures from the INTERACTION_CREATE
frame leaving the fake to the bot's choices arriving. "cold" prefixes were never asked before
(every one samples names); "cached" repeats them; "during a fine-tune" runs cold prefixes while
a 200-name fine-tune of the same server trains. Medians of the per-repetition p50 and p99.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import itertools  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import bot_in_process, percentile, submit_each  # noqa: E402

from bot.app import DinoBot  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.services.training.settings import TrainingSettings  # noqa: E402
from model import BASE_CHECKPOINT, FINE_TUNING, load_checkpoint, sample_names  # noqa: E402
from tests.support.fake_discord import FakeDiscord, FakeGuild, FakeUser  # noqa: E402

GUILD = 1000
LETTERS = "abcdefghijklmnopqrstuvwxyz"


async def burst(fake: FakeDiscord, prefixes: list[str], users: list[FakeUser]) -> tuple[list[float], int]:
    gc.collect()
    handles = await asyncio.gather(*(fake.autocomplete("dinoname", {"prefix": p}, "prefix", user=u, guild=GUILD)
                                     for p, u in zip(prefixes, users, strict=True)))
    responses = await asyncio.gather(*(h.response(timeout=30) for h in handles))
    few = sum(len(r["data"]["choices"]) < 4 for r in responses)  # typed text + at least 3 names
    return [h.latency for h in handles], few


def p50_p99(latencies: list[float]) -> tuple[float, float]:
    """The two figures each phase reports per repetition."""
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


def fresh_prefixes(count: int, taken: set[str]) -> list[str]:
    """Distinct prefixes nobody asked for yet: two to four letters of plausible starts."""
    out = []
    for length in (3, 4, 2):
        for letters in itertools.product(LETTERS, repeat=length):
            prefix = "".join(letters)
            if prefix not in taken and prefix[0] in "abcdeghkmpstv" and prefix[1] in "aeiouyr":
                out.append(prefix)
                taken.add(prefix)
                if len(out) == count:
                    return out
    raise ValueError("ran out of prefixes")


async def main(reps: int, concurrency: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    users = [FakeUser(id=10_000 + i, username=f"user{i}") for i in range(concurrency)]
    guild = FakeGuild(id=GUILD, name="Bench")
    for user in users:
        guild.add_member(user)
    names = [s.name for s in sample_names(load_checkpoint(BASE_CHECKPOINT), 200, temperature=1.2)]
    results: dict[str, list[tuple[float, float]]] = {"cold": [], "cached": [], "cold, during a fine-tune": []}
    short = 0
    with tempfile.TemporaryDirectory() as tmp:
        training = TrainingSettings(schedule_minutes=0, min_names=20, train_config=replace(FINE_TUNING, patience=99))
        config = Config(token="bench", data_dir=Path(tmp), training=training, daily_limit=10**6)
        async with FakeDiscord(guilds=[guild], interaction_deadline=None) as fake, fake.patch_discord():
            async with bot_in_process(fake, DinoBot(config, guild_ready_timeout=0.05)) as bot:
                await submit_each(bot.store, GUILD, names)
                taken: set[str] = set()
                await burst(fake, fresh_prefixes(concurrency, taken), users)  # warm-up, not measured
                for _ in range(reps):
                    prefixes = fresh_prefixes(concurrency, taken)
                    for label in ("cold", "cached"):
                        latencies, few = await burst(fake, prefixes, users)
                        short += few
                        results[label].append(p50_p99(latencies))
                    job = await bot.trainer.request(GUILD, None, "admin")
                    while job.snapshot.progress is None:
                        await asyncio.sleep(0.01)
                    latencies, few = await burst(fake, fresh_prefixes(concurrency, taken), users)
                    short += few
                    results["cold, during a fine-tune"].append(p50_p99(latencies))
                    await job.wait()
            fake.assert_clean()
    print(f"{concurrency} concurrent autocomplete requests per phase, each a different prefix; {reps} repetitions")
    for label, runs in results.items():
        p50 = statistics.median(p for p, _ in runs) * 1e3
        p99 = statistics.median(p for _, p in runs) * 1e3
        worst = max(p for _, p in runs) * 1e3
        print(f"{label:<26} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   worst p99 {worst:7.1f} ms   (deadline 3000 ms)")
    print(f"answers with fewer than 3 names: {short}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.reps, args.concurrency))
