"""How many submissions per second the store accepts, with synchronous=NORMAL and FULL.

Target (issue 3): at least 2 000 accepted submissions/s with durability on. Each run opens a
fresh database, then submits ``--count`` distinct names from distinct members (so the daily
limit never refuses one) and times until the last one is acknowledged; the figure is the
median of ``--runs`` runs. ``concurrency 1`` awaits each submit before the next (the worst
case); higher values run that many submitting tasks at once, as a busy server would.

The database goes in a temporary directory under ``data/`` by default, not ``/tmp``, which may
be a RAM disk where fsync costs nothing and FULL would look free. The fsync latency of the
chosen directory is printed too, because it is what separates FULL from NORMAL.

    .venv/bin/python benchmarks/bench_store.py [--runs 5] [--count 5000] [--concurrency 1 16]
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]

from common import fsync_latency_ms, submit_concurrently  # noqa: E402

from bot.services.store import Store  # noqa: E402

TARGET_PER_S = 2000.0
GUILD = 1


async def one_run(directory: Path, synchronous: str, count: int, concurrency: int) -> float:
    """Accepted submissions per second for one fresh database."""
    run_dir = Path(tempfile.mkdtemp(dir=directory))
    try:
        async with await Store.open(run_dir / "bench.sqlite3", synchronous=synchronous) as store:
            elapsed = await submit_concurrently(store, GUILD, count, concurrency)
            accepted = await store.names.count(GUILD)
        if accepted != count:
            raise RuntimeError(f"only {accepted} of {count} submissions were accepted")
        return count / elapsed
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)



async def main(args: argparse.Namespace) -> None:
    args.dir.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="bench-store-", dir=args.dir))
    try:
        print(f"database directory: {args.dir.resolve()}; "
              f"fsync of 4 KiB: median {fsync_latency_ms(directory):.3f} ms")
        print(f"{args.count} submissions per run, median of {args.runs} runs; "
              f"target {TARGET_PER_S:.0f}/s\n")
        print(f"{'synchronous':<12} {'concurrency':>11} {'median/s':>10} {'min/s':>8} "
              f"{'max/s':>8} {'vs target':>10}")
        for synchronous in ("NORMAL", "FULL"):
            for concurrency in args.concurrency:
                rates = [await one_run(directory, synchronous, args.count, concurrency)
                         for _ in range(args.runs)]
                median = statistics.median(rates)
                print(f"{synchronous:<12} {concurrency:>11} {median:>10.0f} {min(rates):>8.0f} "
                      f"{max(rates):>8.0f} {median / TARGET_PER_S:>9.2f}x", flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per setting (median)")
    parser.add_argument("--count", type=int, default=5000, help="submissions per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16],
                        help="submitting tasks at once")
    parser.add_argument("--dir", type=Path, default=REPO / "data",
                        help="where the temporary databases go (default: data/)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
