"""Scratch arrays reused from one training step to the next.

A training step of a 64-unit LSTM needs about ten arrays of 0.1–1 MB. Allocating them afresh
every batch costs a page fault per 4 KiB, because the C allocator hands blocks that size back
to the operating system when they are freed, and those faults cost about half a step. A
:class:`Workspace` keeps one flat buffer per name and hands out
views of it, growing a buffer only when a longer batch needs more room.

Arrays from a workspace are valid until the same name is asked for again, so only scratch
that does not outlive one training step may come from here; anything returned to a caller
(gradients, probabilities) is allocated normally.
"""
from __future__ import annotations

import math
import threading

import numpy as np


class Workspace:
    """Named scratch buffers, reused across calls (not shared between threads)."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A C-contiguous array of ``shape``, with whatever values the buffer held."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype=dtype)
        return buffer[:size].reshape(shape)

    def zeros(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        out = self.empty(name, shape, dtype)
        out.fill(0)
        return out


_per_thread = threading.local()


def training_workspace() -> Workspace:
    """This thread's workspace for training steps (one per thread, so threads never share one)."""
    workspace = getattr(_per_thread, "workspace", None)
    if workspace is None:
        workspace = _per_thread.workspace = Workspace()
    return workspace
