"""Running the model CLI as a user does: a real subprocess, real files, real exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_model(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m model ARGS`` from ``cwd`` (the checkout by default), one BLAS thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "model", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("member ")]
