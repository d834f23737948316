"""Large servers: what 100,000 names cost the bot, measured in one run.

    .venv/bin/python benchmarks/bench_scale.py [--names 100000] [--reps 7] [--concurrency 20]

The real ``python -m bot`` runs in its own process against the fake Discord from the tests. Its
database starts with two servers: SMALL with 10 approved names and LARGE with ``--names``,
all invented by the shipped model itself (so they are exactly what /dinoname would otherwise
suggest: the worst case for "never a name this server already has"). The script measures:

1. ``/dinoname`` latency in each server, interleaved (SMALL, LARGE, then LARGE, SMALL, …), in
   bursts of ``--concurrency`` requests: plain ``count:5`` (served from the pre-drawn pool) and
   uncached (every request its own prefix and temperature). Target: LARGE p50 ≤ 1.2 × SMALL p50.
2. The bot's resident memory idle (after serving SMALL) and with LARGE loaded (after its bursts
   and a ``/names list file:True``). Target: loaded ≤ idle + 50 MiB.
3. ``/names list file:True`` in LARGE: when the interaction is acknowledged (Discord's deadline
   is 3 s) and when the whole list arrives.
4. ``/retrain`` in LARGE: seconds from the command to the end of the first epoch, as reported
   by the first progress edit; the epoch started before that. Target: ≤ 5 s. The fine-tune is
   then cancelled; the peak resident memory while it ran is reported.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]

from common import DEADLINE, BotProcess, bot_process, burst, distinct_names, percentile, prefill, shows_an_epoch  # noqa: E402

from model import BASE_CHECKPOINT, load_checkpoint, read_names, train_path  # noqa: E402
from tests.support.fake_discord import FakeDiscord, FakeGuild, FakeUser  # noqa: E402

SMALL, LARGE = 1000, 2000
MIB = 2**20


def uncached_options(prefixes: list[str]):
    """Every request of a burst gets its own prefix and temperature: nothing can be pooled."""
    def options(i: int) -> dict:
        return {"prefix": prefixes[i % len(prefixes)], "count": 5, "temperature": round(0.5 + (i % 16) * 0.1, 2)}
    return options


async def sample_rss(bot: BotProcess, seconds: float = 1.0, every: float = 0.1) -> float:
    """Median of a second of samples: one reading can catch a transient allocation."""
    readings = []
    for _ in range(max(1, round(seconds / every))):
        readings.append(bot.rss_mib())
        await asyncio.sleep(every)
    return statistics.median(readings)


async def latency_phase(fake, users, reps, concurrency, prefixes) -> dict[tuple[int, str], list[float]]:
    kinds = {"plain": {"count": 5}, "uncached": uncached_options(prefixes)}
    p50s: dict[tuple[int, str], list[float]] = {(g, k): [] for g in (SMALL, LARGE) for k in kinds}
    for rep in range(reps):
        order = (SMALL, LARGE) if rep % 2 == 0 else (LARGE, SMALL)
        for kind, options in kinds.items():
            for guild in order:
                lat = await burst(fake, "dinoname", options, concurrency, users, guild)
                p50s[(guild, kind)].append(percentile(lat, 0.5))
    return p50s


async def list_phase(fake, member, expected: int) -> tuple[float, int, float, int]:
    """(seconds to the acknowledgement, callback type, seconds to the file, lines in the file)."""
    handle = await fake.slash("names list", {"file": True}, user=member, guild=LARGE)
    await handle.response(timeout=120)
    acknowledged = handle.latency

    def attachment():
        return next((a for m in handle.messages for a in m.attachments), None)

    await fake.wait_until(lambda: attachment() is not None, timeout=300, what="the names file")
    done = time.perf_counter() - handle.sent_at
    lines = len(attachment().text().splitlines())
    if lines != expected:
        raise RuntimeError(f"the names file has {lines} lines, not {expected}")
    return acknowledged, handle.response_type, done, lines


async def fine_tune_phase(fake, bot: BotProcess, admin, timeout: float) -> tuple[float | None, float]:
    """(seconds from /retrain to the first epoch's progress edit, peak RSS while it ran)."""
    handle = await fake.slash("retrain", user=admin, guild=LARGE)
    await handle.response(timeout=60)

    peak, deadline, seen = bot.rss_mib(), time.perf_counter() + timeout, None
    while time.perf_counter() < deadline:
        peak = max(peak, bot.rss_mib())
        if shows_an_epoch(handle.edits):
            seen = time.perf_counter() - handle.sent_at
            break
        await asyncio.sleep(0.05)
    if handle.original is not None and handle.original.find_component(label="Cancel") is not None:
        await (await fake.click(handle.original, label="Cancel", user=admin)).response(timeout=60)
    await fake.wait_until(lambda: handle.edits and not handle.edits[-1].get("components"), timeout=600,
                          what="the /retrain summary")
    return seen, peak


async def main(args: argparse.Namespace) -> None:
    base = load_checkpoint(BASE_CHECKPOINT)
    started = time.perf_counter()
    large_names = distinct_names(base, args.names, seed=1)
    small_names = distinct_names(base, 10, seed=2)
    print(f"invented {args.names:,} + 10 server names in {time.perf_counter() - started:.1f} s")
    prefixes = sorted({n[:3] for n in read_names(train_path())})
    users = [FakeUser(id=10_000 + i, username=f"user{i}") for i in range(args.concurrency)]
    admin = FakeUser(id=99, username="admin")
    guilds = [FakeGuild(id=g, name=f"guild{g}", owner_id=admin.id) for g in (SMALL, LARGE)]
    for guild in guilds:
        for user in (*users, admin):
            guild.add_member(user)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        await prefill(data / "dinobot.sqlite3", {SMALL: small_names, LARGE: large_names})
        env = {"DINOBOT_GENERATE_PER_30S": "1000"}  # the highest allowed: 20 members never reach it
        async with FakeDiscord(guilds=guilds, interaction_deadline=None) as fake, \
                bot_process(fake, data, env) as bot:
            for options in ({"count": 5}, uncached_options(prefixes)):  # warm-up in SMALL only
                await burst(fake, "dinoname", options, args.concurrency, users, SMALL)
            await asyncio.sleep(1.0)
            idle = await sample_rss(bot)
            for options in ({"count": 5}, uncached_options(prefixes)):  # LARGE's names get loaded
                await burst(fake, "dinoname", options, args.concurrency, users, LARGE)
            p50s = await latency_phase(fake, users, args.reps, args.concurrency, prefixes)
            after_bursts = await sample_rss(bot)
            ack, ack_type, file_seconds, lines = await list_phase(fake, users[0], args.names)
            await asyncio.sleep(1.0)
            loaded = await sample_rss(bot)
            first_epoch, peak = await fine_tune_phase(fake, bot, admin, args.finetune_timeout)
            errors = bot.errors()
        fake.assert_clean()
    report(args, p50s, idle, after_bursts, loaded, ack, ack_type, file_seconds, lines, first_epoch, peak, errors)


def report(args, p50s, idle, after_bursts, loaded, ack, ack_type, file_seconds, lines, first_epoch, peak,
           errors) -> None:
    print(f"\n/dinoname, bursts of {args.concurrency}, {args.reps} interleaved repetitions, median of per-burst p50:")
    for kind in ("plain", "uncached"):
        small = statistics.median(p50s[(SMALL, kind)]) * 1e3
        large = statistics.median(p50s[(LARGE, kind)]) * 1e3
        print(f"  {kind:<9} 10 names {small:7.1f} ms   {args.names:,} names {large:7.1f} ms   "
              f"ratio {large / small:4.2f}× (target ≤ 1.20×)")
        for guild, label in ((SMALL, "10"), (LARGE, f"{args.names:,}")):
            each = ", ".join(f"{v * 1e3:.0f}" for v in p50s[(guild, kind)])
            print(f"            per-burst p50s, {label} names: {each} ms")
    print(f"resident memory: idle {idle:.0f} MiB, after the {args.names:,}-name bursts {after_bursts:.0f} MiB, "
          f"after /names list file:True {loaded:.0f} MiB: +{loaded - idle:.0f} MiB (target ≤ +50)")
    kind = {4: "a reply", 5: "a deferral"}.get(ack_type, f"type {ack_type}")
    verdict = "within" if ack <= DEADLINE else "PAST"
    print(f"/names list file:True ({lines:,} names): acknowledged with {kind} after {ack:.2f} s "
          f"({verdict} Discord's {DEADLINE:.0f} s), whole file after {file_seconds:.2f} s")
    if first_epoch is None:
        print(f"fine-tune of {args.names:,} names: no epoch finished within {args.finetune_timeout:.0f} s")
    else:
        print(f"fine-tune of {args.names:,} names: first epoch finished {first_epoch:.2f} s after /retrain "
              f"(target: started within 5 s); peak resident memory {peak:.0f} MiB")
    print(f"bot log lines at ERROR: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:5]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--finetune-timeout", type=float, default=300.0)
    asyncio.run(main(parser.parse_args()))
