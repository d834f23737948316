"""What the bot benchmarks share: bursts through the fake Discord, a bot in its own process,
percentiles, and synthetic server names.

Not a benchmark itself. The scripts next to it put this folder and the checkout on
``sys.path`` and import it as ``common``.
"""
from __future__ import annotations

import asyncio
import gc
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Callable, Mapping, Sequence

import numpy as np
import psutil

from bot.app import DinoBot
from bot.services.store import Store
from model import NameModel, read_names, sample_names, train_path
from tests.support.fake_discord import FakeDiscord, FakeUser

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 3.0  # Discord's time to acknowledge an interaction
APOLOGY = "something went wrong on our side"


def train_prefixes() -> list[str]:
    """The distinct three-letter starts of the training names: /dinoname prefixes a member might
    type, sorted so every run picks the same ones."""
    return sorted({name[:3] for name in read_names(train_path())})


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile: every benchmark quotes p50/p99 by this one rule."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def shows_an_epoch(edits: Sequence[dict]) -> bool:
    """Whether a /retrain reply's edits show a finished pass over the names ("1/4 · network 1/3"):
    the fine-tune is past its set-up and training, which is all Discord lets us see of it."""
    return any(field.get("name") == "Pass over the names" and field.get("value", "")[:1].isdigit()
               for edit in edits for embed in edit.get("embeds") or [] for field in embed.get("fields", []))


async def submit_concurrently(store: Store, guild: int, count: int, concurrency: int) -> float:
    """Seconds for ``count`` submissions from distinct members, ``concurrency`` at a time."""
    from tests.support.name_factory import name_for

    async def worker(start: int) -> None:
        for i in range(start, count, concurrency):
            await store.names.submit(guild, 100_000 + i, name_for(i))

    began = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return time.perf_counter() - began


async def submit_each(store: Store, guild: int, names: Sequence[str], first_member: int = 50_000) -> None:
    """Submit ``names`` in ``guild`` one after another, each from its own member (so no daily
    limit gets in the way): the server's names a benchmark then fine-tunes on."""
    for i, name in enumerate(names):
        await store.names.submit(guild, first_member + i, name)


@asynccontextmanager
async def bot_in_process(fake: FakeDiscord, bot: DinoBot) -> AsyncIterator[DinoBot]:
    """Log ``bot`` in to ``fake`` in this process and event loop, wait for its READY, and close
    it after the block (the fake's own work is then inside every figure alike)."""
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect())
    await fake.wait_for_ready()
    try:
        yield bot
    finally:
        await bot.close()
        await task


def fsync_latency_ms(directory: Path, samples: int = 200) -> float:
    """Median time to append 4 KiB to a file and fsync it: the cost a durable commit pays."""
    path = directory / "fsync-probe.tmp"
    times = []
    with open(path, "wb") as f:
        for _ in range(samples):
            f.write(b"\0" * 4096)
            f.flush()
            began = time.perf_counter()
            os.fsync(f.fileno())
            times.append(time.perf_counter() - began)
    path.unlink()
    return statistics.median(times) * 1000


Options = Mapping[str, object] | Callable[[int], Mapping[str, object]]


async def burst(fake: FakeDiscord, command: str, options: Options, n: int, users: Sequence[FakeUser],
                guild: int | None, timeout: float = 60.0) -> list[float]:
    """Inject ``n`` interactions at once and return their latencies (frame sent → callback).

    ``options`` is one option dict for all, or a function of the request's index (so every
    request can have its own prefix and temperature).
    """
    gc.collect()  # every phase starts from the same clean heap (the fake keeps every message)
    handles = await asyncio.gather(*(
        fake.slash(command, options(i) if callable(options) else options, user=users[i % len(users)], guild=guild)
        for i in range(n)))
    await asyncio.gather(*(h.response(timeout=timeout) for h in handles))
    for handle in handles:
        text = str(handle.data)
        if APOLOGY in text:
            raise RuntimeError(f"/{command} answered with an apology: {text[:300]}")
    return [h.latency for h in handles]


def distinct_names(model: NameModel, count: int, *, seed: int, temperature: float = 1.0,
                   avoid: set[str] | None = None) -> list[str]:
    """``count`` distinct complete names the model itself invents: the realistic worst case for
    /dinoname's "never a name this server has" check, since they are what it would suggest."""
    rng = np.random.default_rng(seed)
    seen = set(avoid or ())
    found: list[str] = []
    while len(found) < count:
        for sample in sample_names(model, min(10_000, count - len(found)), temperature=temperature,
                                   avoid=seen, rng=rng):
            if sample.complete and sample.name not in seen:
                seen.add(sample.name)
                found.append(sample.name)
    return found


async def prefill(db_path: Path, names_by_guild: Mapping[int, Sequence[str]], *,
                  status: str = "approved") -> None:
    """Create the database (the bot's own schema) and bulk-insert approved names, as if
    members had submitted them over months (one submitter per name, one name per second)."""
    store = await Store.open(db_path)
    await store.close()
    start = time.time() - 10 * 86_400 - sum(len(v) for v in names_by_guild.values())
    with sqlite3.connect(db_path) as db:
        for guild_id, names in names_by_guild.items():
            db.executemany(
                "INSERT INTO submissions (guild_id, name, submitter_id, created_at, status)"
                " VALUES (?, ?, ?, ?, ?)",
                ((guild_id, name, 1_000_000 + i, start + i, status) for i, name in enumerate(names)))
    # sqlite3's context manager commits; the WAL is checkpointed when the bot opens it.


class BotProcess:
    """``python -m bot`` (or a script standing in for it) as a child process talking to ``fake``."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.ps = psutil.Process(process.pid)

    def rss_mib(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def errors(self) -> list[str]:
        """Log lines at ERROR or above, and tracebacks: what an operator would be paged for."""
        return [line for line in self.log_lines() if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)]

    def warnings(self) -> list[str]:
        return [line for line in self.log_lines() if re.search(r"\bWARNING\b", line)]


@asynccontextmanager
async def bot_process(fake: FakeDiscord, data_dir: Path, env: Mapping[str, str] | None = None,
                      script: Path | None = None, ready_timeout: float = 120.0) -> AsyncIterator[BotProcess]:
    """Start the bot against ``fake`` and wait for its READY; SIGTERM it (clean shutdown) after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-stderr.log"
    full_env = {**os.environ, "DISCORD_TOKEN": fake.token, "DINOBOT_DATA_DIR": str(data_dir),
                "DINOBOT_DISCORD_API_BASE": fake.base_url, "DINOBOT_FINETUNE_EVERY_MINUTES": "0",
                "DINOBOT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT), **(env or {})}
    args = [str(script)] if script is not None else ["-m", "bot"]
    ready_before = fake.gateway.ready_count
    with open(log_path, "wb") as log_file:
        child = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=str(data_dir.parent),
                                                     env=full_env, stdout=subprocess.DEVNULL, stderr=log_file)
    bot = BotProcess(child, log_path)
    try:
        await fake.wait_for_ready(count=ready_before + 1, timeout=ready_timeout)
        await asyncio.sleep(0.5)  # on_ready and the first pool refill
        yield bot
    finally:
        if child.returncode is None:
            child.terminate()
            try:
                await asyncio.wait_for(child.wait(), timeout=60)
            except asyncio.TimeoutError:
                child.kill()
                await child.wait()
