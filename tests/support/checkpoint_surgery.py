"""Damaging a saved checkpoint from outside, array by array, so tests can check that the loader
refuses it. Shared by the network and the n-gram checkpoint tests: both damage the same ``.npz``
layout (weights plus a JSON ``meta`` array)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

Arrays = dict[str, np.ndarray]


def rewrite(path: Path, mutate: Callable[[Arrays], object]) -> None:
    """Load every array of the checkpoint at ``path``, let ``mutate`` change them in place, and
    write them back as a plain ``np.savez`` (not atomically: the damage is the point)."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    mutate(arrays)
    np.savez(path, **arrays)


def read_meta(arrays: Arrays) -> dict:
    """The checkpoint's JSON metadata, decoded from its ``meta`` byte array."""
    return json.loads(arrays["meta"].tobytes())


def write_meta(arrays: Arrays, meta: dict) -> None:
    """Store ``meta`` as the checkpoint's ``meta`` byte array, as the saver encodes it."""
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
