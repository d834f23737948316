"""Scratch arrays reused from one training step to the next.

A training step of a 64-unit LSTM needs about ten arrays of 0.1–1 MB. Allocating them afresh
every batch costs a page fault per 4 KiB, because the C allocator hands blocks that size back
to the operating system when they are freed, and those faults cost about half a step. A
:class:`Workspace` keeps one flat buffer per name and hands out
views of it, growing a buffer only when a longer batch needs more room.

Arrays from a workspace are valid until the same name is asked for again, so only scratch
that does not outlive one training step may come from here; anything returned to a caller
(gradients, probabilities) is allocated normally.

The views themselves are remembered too, and so are lists of per-step views built from them
(:meth:`Workspace.memo`): batches come in a few dozen lengths, and at 64 hidden units making
the same dozen views again every step and every batch cost a few per cent of training.
Growing any buffer forgets all of them.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Callable, Hashable

import numpy as np


class Workspace:
    """Named scratch buffers, reused across calls (not shared between threads)."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        self._views: dict[tuple, np.ndarray] = {}
        self._memos: dict[Hashable, Any] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A C-contiguous array of ``shape``, with whatever values the buffer held."""
        key = (name, shape, dtype)
        view = self._views.get(key)
        if view is not None:
            return view
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype=dtype)
            self._views.clear()  # views of the old buffer must not be handed out again
            self._memos.clear()
        view = self._views[key] = buffer[:size].reshape(shape)
        return view

    def zeros(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        out = self.empty(name, shape, dtype)
        out.fill(0)
        return out

    def memo(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()``, remembered under ``key`` until a buffer grows.

        For views of this workspace's arrays: ask for every array they view (with
        :meth:`empty`) before calling this, so that a buffer grown by those calls has already
        dropped the views of its old memory.
        """
        value = self._memos.get(key)
        if value is None:
            value = self._memos[key] = make()
        return value


_per_thread = threading.local()


def training_workspace() -> Workspace:
    """This thread's workspace for training steps (one per thread, so threads never share one)."""
    workspace = getattr(_per_thread, "workspace", None)
    if workspace is None:
        workspace = _per_thread.workspace = Workspace()
    return workspace
