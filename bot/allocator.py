"""Give freed NumPy arrays back to the operating system, so a bot that runs for weeks stays small.

glibc's ``malloc`` serves a large block with its own ``mmap`` and unmaps it when freed, but
after the first such free it raises that threshold to the freed size (up to 32 MiB). From then
on, the fine-tunes' and the sampler's arrays of a few MiB come from the heaps of whichever
threads allocated them, where a freed block is only reused, and fragments. In the 10-minute soak
(``benchmarks/bench_soak.py``) resident memory kept climbing by about 3 MiB a minute that way;
with the threshold fixed at 128 KiB it levelled off (figures in the README, "Soak").

Fixing the threshold is the documented ``mallopt`` switch (the ``MALLOC_MMAP_THRESHOLD_``
environment variable does the same, but only when set before the process starts). It costs a
page fault per 4 KiB of each new large array; training reuses its scratch arrays
(:mod:`model.workspace`), so the hot loops do not pay it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024  # glibc's own starting value, now fixed


def return_large_blocks_to_the_os(threshold: int = THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds at ``threshold`` bytes; False where there is no glibc.

    Other C libraries (musl, macOS) already unmap large blocks on free, so nothing is needed.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.debug("no glibc mallopt here (%s): leaving the allocator as it is", name)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success, 0 on error.
    done = mallopt(M_MMAP_THRESHOLD, threshold) == 1 and mallopt(M_TRIM_THRESHOLD, threshold) == 1
    if not done:
        log.warning("could not fix the allocator's thresholds; memory may grow with fragmentation")
    return done
