"""The bot hands freed large arrays back to the OS instead of keeping them in fragmented heaps."""
from __future__ import annotations

import subprocess
import sys

import pytest

# One 16 MiB array freed (glibc then raises its mmap threshold to 16 MiB), then 50 arrays of
# 2 MiB of which only the newest is kept: the resident memory left says where they lived.
SCRIPT = """
import sys
import numpy as np
import psutil
from bot.allocator import return_large_blocks_to_the_os
if sys.argv[1] == "fixed":
    assert return_large_blocks_to_the_os()
rss = lambda: psutil.Process().memory_info().rss / 2**20
before = rss()
big = np.ones(2 * 2**20); del big
arrays = [np.ones(2**18) for _ in range(50)]
kept = arrays[-1]; del arrays
print(rss() - before)
"""


def retained_mib(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_arrays_leave_the_process_once_the_threshold_is_fixed():
    assert retained_mib("default") > 60  # the fragmentation this fixes (glibc's dynamic threshold)
    assert retained_mib("fixed") < 20

