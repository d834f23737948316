"""Soak: the real bot under mixed traffic in many servers for a long while.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 10] [--servers 20] [--rate 8] [--workers 8]

``python -m bot`` runs in its own process against the fake Discord from the tests, in
``--servers`` servers of ten members and an admin each (half of them hold new names for review),
each starting with 30 approved names and, unless ``--cold``, a promoted fine-tune of them (a
bot that has been running for a while: its model cache fills within the warm-up, as it does in
a busy deployment; with ``--cold`` every server starts on the base model, so the cache fills
during the measured minutes).
``--workers`` simulated members keep up about ``--rate`` interactions per second between them,
picked at random: ``/dinoname`` with random options, 🔁 More on an earlier reply (by its asker or
someone else), ``/submit`` (mostly new names, some invalid, some taken), ``/review`` with Approve or
Reject, ``/names list``, and now and then ``/retrain``; the scheduler fine-tunes every two
minutes too. Cooldowns and limits are the shipped defaults, so some answers are refusals: they
are expected, and counted.

Checked, and printed at the end:

- the bot's resident memory, sampled every 5 s: growth after the warm-up (the first fifth of the
  run) ≤ 10 %, comparing the median of the last minute with the median of the minute after the
  warm-up;
- no unexpected errors: every interaction answered (within Discord's 3 s), no apology (error id)
  shown to anyone, no request the fake refused, no ERROR line in the bot's log, no failed
  fine-tune;
- every acknowledged submission is in the database at the end (after a clean SIGTERM).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import collections  # noqa: E402
import random  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import (  # noqa: E402
    APOLOGY,
    DEADLINE,
    BotProcess,
    bot_process,
    distinct_names,
    percentile,
    prefill,
    train_prefixes,
)

from bot.services.store import Store  # noqa: E402
from model import BASE_CHECKPOINT, NameModel, checkpoint_bytes, fine_tune, load_checkpoint, read_names, train_path  # noqa: E402,E501
from tests.support.fake_discord import FakeDiscord, FakeGuild, FakeUser  # noqa: E402

FIRST_GUILD = 10_000
MEMBERS_PER_GUILD = 10
SEEDED = 30  # approved names each server has at the start
PREFIXES = train_prefixes()
BAD_NAMES = ("t-rex", "ab", "x" * 40, "raptor 2", "🦖saurus", "ñandusaurus", "", "   ")
ACTIONS = (("dinoname", 40), ("more", 15), ("submit", 25), ("review", 8), ("list", 5), ("retrain", 1))


@dataclass
class Server:
    guild: FakeGuild
    admin: FakeUser
    members: list[FakeUser]
    review: bool
    replies: list = field(default_factory=list)  # /dinoname handles whose message has a More button


@dataclass
class Tally:
    started: float = field(default_factory=time.perf_counter)
    counts: collections.Counter = field(default_factory=collections.Counter)
    refusals: collections.Counter = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    acked: set[tuple[int, str]] = field(default_factory=set)
    retrains: list = field(default_factory=list)

    def problem(self, text: str) -> None:
        self.problems.append(f"{time.perf_counter() - self.started:6.1f} s {text}")


def texts(handle) -> str:
    bodies = [handle.data, *handle.edits, *(m.to_payload() for m in handle.followups)]
    parts = []
    for body in bodies:
        parts.append(str(body.get("content") or ""))
        for embed in body.get("embeds") or []:
            parts += [embed.get("title", ""), embed.get("description", "")]
            parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


REFUSALS = ("Slow down", "already been submitted", "already a known dinosaur", "per 24 hours", "is not a letter",
            "letters", "No new names", "Only moderators", "no fine-tune running", "already under way",
            "Not enough names", "was already", "Nothing waits", "not a-z", "was not found")


async def answered(handle, tally: Tally, kind: str) -> str:
    """Wait for the bot's answer; record its latency, and anything that should not happen."""
    try:
        await handle.response(timeout=30)
    except AssertionError as exc:
        tally.problem(f"{kind}: no answer ({exc})")
        return ""
    tally.counts[kind] += 1
    tally.latencies.append(handle.latency)
    if handle.latency > DEADLINE:
        tally.problem(f"{kind}: answered after {handle.latency:.2f} s, past Discord's deadline")
    if handle.response_type == 5:  # deferred: the answer is an edit or a followup
        try:
            await handle.wait_for(lambda h: h.edits or h.followups, timeout=30, what="the deferred answer")
        except AssertionError:
            tally.problem(f"{kind}: deferred and never completed")
    text = texts(handle)
    if APOLOGY in text:
        tally.problem(f"{kind}: an apology was shown: {text[:200]!r}")
    if handle.data.get("flags", 0) & 64 and any(r in text for r in REFUSALS):
        tally.refusals[f"{kind}: {next(r for r in REFUSALS if r in text)}"] += 1
    return text


async def act(fake: FakeDiscord, server: Server, tally: Tally, rng: random.Random, names: list[str]) -> None:
    kind = rng.choices([a for a, _ in ACTIONS], weights=[w for _, w in ACTIONS])[0]
    member = rng.choice(server.members)
    gid = server.guild.id
    if kind == "more" and not server.replies:
        kind = "dinoname"
    if kind == "dinoname":
        options = {}
        if rng.random() < 0.5:
            options["prefix"] = rng.choice(PREFIXES)
        if rng.random() < 0.5:
            options["count"] = rng.randint(1, 10)
        if rng.random() < 0.3:
            options["temperature"] = round(rng.uniform(0.3, 2.0), 2)
        handle = await fake.slash("dinoname", options, user=member, guild=gid)
        await answered(handle, tally, kind)
        if handle.original is not None and handle.original.find_component(label="More") is not None:
            server.replies = [*server.replies[-20:], handle]
    elif kind == "more":
        reply = rng.choice(server.replies)
        presser = reply.user if rng.random() < 0.6 else member
        await answered(await fake.click(reply.original, label="More", user=presser), tally, kind)
    elif kind == "submit":
        roll = rng.random()
        name = rng.choice(BAD_NAMES) if roll < 0.1 else names.pop() if roll < 0.9 and names else \
            rng.choice(PREFIXES) + "osaurus"
        if not name.strip():
            name = "  x"
        handle = await fake.slash("submit", {"name": name}, user=member, guild=gid)
        text = await answered(handle, tally, kind)
        if "joins this server's names" in text or "is saved and awaits review" in text:
            tally.acked.add((gid, text.split("**")[1].lower()))
    elif kind == "review":
        handle = await fake.slash("review", user=server.admin, guild=gid)
        await answered(handle, tally, kind)
        if handle.original is not None and handle.original.find_component(label="Approve") is not None:
            label = "Approve" if rng.random() < 0.8 else "Reject"
            await answered(await fake.click(handle.original, label=label, user=server.admin), tally, "decide")
    elif kind == "list":
        await answered(await fake.slash("names list", {"file": rng.random() < 0.3}, user=member, guild=gid),
                       tally, kind)
    else:
        handle = await fake.slash("retrain", user=server.admin, guild=gid)
        await answered(handle, tally, kind)
        tally.retrains.append(handle)


async def sample_memory(bot: BotProcess, samples: list[tuple[float, float]], started: float) -> None:
    while True:
        samples.append((time.perf_counter() - started, bot.rss_mib()))
        await asyncio.sleep(5)


async def worker(fake, servers, tally, rng, names, until: float, interval: float) -> None:
    while time.perf_counter() < until:
        began = time.perf_counter()
        try:
            await act(fake, rng.choice(servers), tally, rng, names)
        except Exception as exc:  # noqa: BLE001 - a broken benchmark step is reported, not fatal
            tally.problem(f"the benchmark itself failed a step: {exc!r}")
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - began)))


def fine_tuned(base: NameModel, names: list[str]) -> bytes:
    fit = fine_tune(base, names[2:], names[:2], replay_names=read_names(train_path()))
    return checkpoint_bytes(fit.model)


async def establish(db_path: Path, base: NameModel, names_by_guild: dict[int, list[str]]) -> None:
    """Give every server a promoted fine-tune of its names, as the bot would have made it."""
    async with await Store.open(db_path) as store:
        for guild_id, names in names_by_guild.items():
            data = await asyncio.to_thread(fine_tuned, base, names)
            now = time.time()
            await store.versions.record(guild_id, trigger="schedule", status="promoted", started_at=now - 2,
                                        finished_at=now, names_used=len(names), checkpoint=data,
                                        trained_names=names[2:], reason="soak set-up")


def make_servers(count: int) -> list[Server]:
    servers = []
    for k in range(count):
        gid = FIRST_GUILD + k
        admin = FakeUser(id=gid * 100, username=f"admin{k}")
        members = [FakeUser(id=gid * 100 + 1 + i, username=f"m{k}_{i}") for i in range(MEMBERS_PER_GUILD)]
        guild = FakeGuild(id=gid, name=f"Soak {k}", owner_id=admin.id)
        for user in (admin, *members):
            guild.add_member(user)
        servers.append(Server(guild, admin, members, review=k % 2 == 1))
    return servers


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    servers = make_servers(args.servers)
    base = load_checkpoint(BASE_CHECKPOINT)
    names = distinct_names(base, 20_000, seed=args.seed, temperature=1.3)
    rng.shuffle(names)
    tally = Tally()
    memory: list[tuple[float, float]] = []
    env = {"DINOBOT_FINETUNE_EVERY_MINUTES": "2", "DINOBOT_LOG_LEVEL": "WARNING"}
    duration = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        # Every server starts with SEEDED approved names, so fine-tunes (and their memory) are part
        # of the traffic from the first minutes, not something that only starts after the warm-up.
        seeded = {s.guild.id: [names.pop() for _ in range(SEEDED)] for s in servers}
        await prefill(data / "dinobot.sqlite3", seeded)
        if not args.cold:
            await establish(data / "dinobot.sqlite3", base, seeded)
        async with FakeDiscord(guilds=[s.guild for s in servers], interaction_deadline=None) as fake:
            async with bot_process(fake, data, env) as bot:
                for server in servers:
                    if server.review:
                        handle = await fake.slash("settings", {"review": True}, user=server.admin,
                                                  guild=server.guild.id)
                        await answered(handle, tally, "settings")
                started = time.perf_counter()
                sampler = asyncio.create_task(sample_memory(bot, memory, started))
                interval = args.workers / args.rate
                await asyncio.gather(*(worker(fake, servers, tally, random.Random(rng.random()), names,
                                              started + duration, interval) for _ in range(args.workers)))
                sampler.cancel()
                elapsed = time.perf_counter() - started
                for handle in tally.retrains:  # a fine-tune that failed is an error; one cut by shutdown is not
                    if "fine-tune failed" in texts(handle).lower():
                        tally.problem(f"a fine-tune failed: {texts(handle)[-300:]!r}")
            # bot_process sent SIGTERM and waited: the bot shut down cleanly
            exit_code = bot.process.returncode
            log_errors = bot.errors()
            warnings = collections.Counter(line.split(": ", 1)[-1][:80] for line in bot.warnings())
            refused = [f"{r.method} {r.path} -> {r.status}" for r in fake.api_errors]
        with sqlite3.connect(data / "dinobot.sqlite3") as db:
            stored = set(db.execute("SELECT guild_id, name FROM submissions"))
    report(args, tally, memory, elapsed, exit_code, log_errors, warnings, refused, stored, duration)


def report(args, tally: Tally, memory, elapsed, exit_code, log_errors, warnings, refused, stored, duration) -> None:
    total = sum(tally.counts.values())
    start = "cold: every server on the base model" if args.cold else "every server with a fine-tuned model"
    print(f"{elapsed / 60:.1f} min ({start}), {args.servers} servers, {total:,} interactions "
          f"({total / elapsed:.1f}/s): " + ", ".join(f"{k} {v:,}" for k, v in tally.counts.most_common()))
    p50, p99 = percentile(tally.latencies, 0.5), percentile(tally.latencies, 0.99)
    print(f"latency p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, max {max(tally.latencies) * 1e3:.0f} ms "
          f"(Discord's deadline: {DEADLINE:.0f} s)")
    print("expected refusals: " + (", ".join(f"{k} {v}" for k, v in tally.refusals.most_common()) or "none"))
    warm = duration / 5
    after = [rss for t, rss in memory if warm <= t < warm + 60]
    last = [rss for t, rss in memory if t >= memory[-1][0] - 60]
    peak = max(rss for t, rss in memory if t >= warm)
    base, end = statistics.median(after), statistics.median(last)
    print(f"resident memory: {memory[0][1]:.0f} MiB at the start, {base:.0f} MiB after the warm-up "
          f"({warm / 60:.0f} min), {end:.0f} MiB in the last minute: growth {100 * (end / base - 1):+.1f} % "
          f"(target ≤ +10 %), peak {peak:.0f} MiB ({100 * (peak / base - 1):+.1f} %)")
    print("memory every minute (MiB): " + ", ".join(f"{rss:.0f}" for t, rss in memory if int(t) % 60 < 5))
    missing = {item for item in tally.acked if item not in stored}
    print(f"acknowledged submissions: {len(tally.acked):,}, all in the database: {not missing}"
          + (f" (missing: {sorted(missing)[:5]})" if missing else ""))
    print(f"bot exit code after SIGTERM: {exit_code}; log lines at ERROR: {len(log_errors)}; requests the fake "
          f"refused: {len(refused)}; other problems: {len(tally.problems)}")
    for line in [*log_errors[:5], *refused[:5], *tally.problems[:10]]:
        print(f"  {line}")
    if warnings:
        print("bot log warnings: " + "; ".join(f"{n} × {text}" for text, n in warnings.most_common(5)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--rate", type=float, default=8.0, help="interactions per second, all workers together")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cold", action="store_true",
                        help="servers start on the base model, so the model cache fills during the run")
    asyncio.run(main(parser.parse_args()))
