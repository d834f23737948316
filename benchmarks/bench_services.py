"""Event-loop lag while a fine-tune runs, and how long a 200-name fine-tune takes.

    .venv/bin/python benchmarks/bench_services.py [--names 200] [--repeats 3] [--pin] [--sampling-load]

Uses the real services on temporary files: a Store, a ModelRegistry serving the shipped model,
and a TrainingService fine-tuning it for a guild with ``--names`` approved names (invented by
the base model in one style, like a server's submissions). NumPy runs single-threaded
(OMP/OpenBLAS/MKL threads = 1; ``BENCH_BLAS_THREADS=2`` to compare); ``--pin`` also pins the
process to one CPU, so the event loop and the training thread share a core (the worst case).

(1) Lag: a ticker on the event loop asks to wake every 10 ms and records how late it wakes.
    Measured with no training, then during fine-tunes with the interpreter's default GIL switch
    interval (5 ms) and with 1 ms (``TrainingSettings.switch_interval=0.001``), interleaved.
    ``--sampling-load`` adds a thread sampling names all along, as /generate traffic would.
    Target: p99 <= 25 ms during a fine-tune.
(2) Fine-tune time: request -> outcome (data, training, judging, checkpoint, commit, swap).
    Target: <= 10 s for 200 names on one core.
"""
from __future__ import annotations

import os

# Before NumPy loads. BENCH_BLAS_THREADS=2 shows what an unconfigured process does.
BLAS_THREADS = os.environ.get("BENCH_BLAS_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = BLAS_THREADS

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import AsyncIterator  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from common import percentile  # noqa: E402

from bot.services.registry import ModelRegistry  # noqa: E402
from bot.services.store import Store  # noqa: E402
from bot.services.training.service import TrainingService  # noqa: E402
from bot.services.training.settings import TrainingSettings  # noqa: E402
from model import BASE_CHECKPOINT, load_checkpoint, sample_names  # noqa: E402

log = logging.getLogger("bench_services")
TICK = 0.010
LAG_TARGET_MS = 25.0
TIME_TARGET_S = 10.0


class Ticker:
    """Wakes every TICK seconds on the loop and records how late each wake-up was (ms)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        due = time.perf_counter() + TICK
        while True:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            now = time.perf_counter()
            self.lags.append((now - due) * 1000.0)
            due = now + TICK

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[float]:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return list(self.lags)


def invented_names(count: int) -> list[str]:
    """A server with a taste: base-model names that start with one of four prefixes.

    A style gives the fine-tune something to learn, so the validation figures printed are
    meaningful (held-out names of that style get much likelier, the base style a little less).
    """
    base, rng = load_checkpoint(BASE_CHECKPOINT), np.random.default_rng(2024)
    prefixes = ("zor", "quil", "vel", "mox")
    names: list[str] = []
    for k, prefix in enumerate(prefixes):
        wanted = count // len(prefixes) + (k < count % len(prefixes))
        names += [s.name for s in sample_names(base, wanted, prefix=prefix, rng=rng)]
    return names


async def add_guild(store: Store, guild: int, names: list[str]) -> None:
    for user, name in enumerate(names):
        await store.names.submit(guild, 10_000 + user, name)


async def one_fine_tune(service: TrainingService, guild: int, ticker: Ticker) -> dict:
    ticker.start()
    started = time.perf_counter()
    outcome = await (await service.request(guild, 1)).wait()
    seconds = time.perf_counter() - started
    lags = await ticker.stop()
    return {"seconds": seconds, "lags": lags, "promoted": outcome.promoted,
            "before": outcome.val_loss_before, "after": outcome.val_loss_after}


def lag_line(label: str, lags: list[float]) -> str:
    return (f"{label:<52} ticks {len(lags):>5}   p50 {percentile(lags, 0.5):6.2f} ms   "
            f"p99 {percentile(lags, 0.99):6.2f} ms   max {max(lags):6.2f} ms")


@contextlib.asynccontextmanager
async def sampling_load(enabled: bool) -> AsyncIterator[None]:
    """Optionally keep a second thread busy sampling names, as /generate traffic would."""
    if not enabled:
        yield
        return
    base, stop = load_checkpoint(BASE_CHECKPOINT), threading.Event()

    def sample_until_stopped() -> None:
        while not stop.is_set():
            sample_names(base, 50)

    thread = threading.Thread(target=sample_until_stopped, name="bench-sampling")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)


async def measure(args: argparse.Namespace, workdir: Path) -> None:
    names = invented_names(args.names)
    assert len(names) == args.names, f"the base model invented only {len(names)} distinct names"
    variants = {"default switch interval (5 ms)": None, "switch interval 1 ms": 0.001}
    async with await Store.open(workdir / "bench.sqlite3", daily_limit=None) as store:
        registry = ModelRegistry(store, workdir / "models")
        await registry.start()
        ticker = Ticker()
        ticker.start()
        await asyncio.sleep(args.idle)
        idle = await ticker.stop()
        runs: dict[str, list[dict]] = {label: [] for label in variants}
        guild = 0
        for _ in range(args.repeats):
            for label, interval in variants.items():  # interleaved, so drift hits both alike
                guild += 1
                await add_guild(store, guild, names)
                settings = TrainingSettings(schedule_minutes=0, switch_interval=interval)
                async with TrainingService(store, registry, settings) as service, \
                        sampling_load(args.sampling_load):
                    runs[label].append(await one_fine_tune(service, guild, ticker))
    report(args, idle, runs)


def report(args: argparse.Namespace, idle: list[float], runs: dict[str, list[dict]]) -> None:
    pinned = f"pinned to CPU {sorted(os.sched_getaffinity(0))}" if args.pin else "not pinned"
    pinned += ", a sampling thread competing" if args.sampling_load else ""
    print(f"\nfine-tune of the shipped model on {args.names} names, {args.repeats} runs per "
          f"variant, BLAS threads {BLAS_THREADS}, {pinned}, {os.cpu_count()} CPUs\n")
    print(lag_line("event loop, no training", idle))
    idle_p99 = percentile(idle, 0.99)
    for label, results in runs.items():
        lags = [lag for r in results for lag in r["lags"]]
        p99s = [percentile(r["lags"], 0.99) for r in results]
        print(lag_line(f"during fine-tune, {label}", lags))
        print(f"{'':<52} median of per-run p99 {statistics.median(p99s):6.2f} ms; "
              f"p99 / idle p99 = {percentile(lags, 0.99) / max(idle_p99, 1e-9):.1f}x; "
              f"p99 / target = {percentile(lags, 0.99) / LAG_TARGET_MS:.2f}")
    print()
    for label, results in runs.items():
        seconds = [r["seconds"] for r in results]
        median = statistics.median(seconds)
        losses = ", ".join(f"{r['before']:.3f}->{r['after']:.3f}{'' if r['promoted'] else ' (kept old)'}"
                           for r in results)
        print(f"fine-tune time, {label:<32} median {median:5.2f} s  (min {min(seconds):.2f}, "
              f"max {max(seconds):.2f}); median / target = {median / TIME_TARGET_S:.2f}; "
              f"val loss {losses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of lag with no training")
    parser.add_argument("--pin", action="store_true", help="pin the process to one CPU")
    parser.add_argument("--sampling-load", action="store_true",
                        help="a second thread samples names throughout each fine-tune")
    args = parser.parse_args()
    if args.pin:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
