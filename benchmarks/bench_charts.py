"""What the charts cost: memory added by matplotlib, and milliseconds per chart.

    .venv/bin/python benchmarks/bench_charts.py [--reps 25] [--runs 3]

Each run is a fresh Python process that imports the bot (as ``python -m bot`` does before it
connects) and records its resident memory, then draws the first chart (which imports matplotlib)
and records memory and time again, then draws both charts ``--reps`` times each, interleaved.
The figures printed are medians over ``--runs`` processes. The charts get realistic inputs: a
fine-tune of a 3-network ensemble for 20 epochs, and a server with 30 versions.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import gc, json, os, sys, time
import psutil
sys.path.insert(0, {root!r})
process = psutil.Process()
rss = lambda: process.memory_info().rss / 2**20
import bot.app, bot.cogs.generate, bot.cogs.retrain  # noqa: E401 - what the running bot has loaded
from bot.services import charts
from model import Progress
gc.collect()
before = rss()
history = [Progress(e, 20, 2.0 - 0.02 * e, 1.9 - 0.01 * e, 1.8, 1e5, 0.1 * e, m, 3)
           for m in range(3) for e in range(1, 21)]
points = [charts.VersionPoint(v, 1.7, 1.7 - 0.003 * v, v % 4 != 0, v == 29) for v in range(1, 31)]
start = time.perf_counter()
charts.fine_tune_png(history, 1.66, 1.65)
first_ms = (time.perf_counter() - start) * 1000
gc.collect()
after_first = rss()
fine, hist = [], []
for _ in range({reps}):
    start = time.perf_counter(); charts.fine_tune_png(history, 1.66, 1.65); fine.append(time.perf_counter() - start)
    start = time.perf_counter(); charts.history_png(points); hist.append(time.perf_counter() - start)
gc.collect()
print(json.dumps({{"before": before, "after_first": after_first, "after_all": rss(), "first_ms": first_ms,
                  "fine_ms": sorted(fine)[len(fine) // 2] * 1000, "hist_ms": sorted(hist)[len(hist) // 2] * 1000}}))
"""


def run_once(reps: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), reps=reps)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=25)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [run_once(args.reps) for _ in range(args.runs)]
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    rows = [
        ("resident memory of the imported bot", f"{med['before']:.1f} MiB"),
        ("after the first chart (matplotlib imported)",
         f"{med['after_first']:.1f} MiB (+{med['after_first'] - med['before']:.1f} MiB)"),
        (f"after {2 * args.reps} more charts",
         f"{med['after_all']:.1f} MiB (+{med['after_all'] - med['before']:.1f} MiB)"),
        ("first chart, matplotlib's import included", f"{med['first_ms']:.0f} ms"),
        ("fine-tune chart (3 networks x 20 epochs)", f"{med['fine_ms']:.0f} ms (median of {args.reps})"),
        ("model history chart (30 versions)", f"{med['hist_ms']:.0f} ms (median of {args.reps})"),
    ]
    for label, value in rows:
        print(f"{label + ':':46} {value}")
    print(f"medians of {args.runs} fresh processes")


if __name__ == "__main__":
    main()
