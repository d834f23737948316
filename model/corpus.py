"""The training corpus: where it is, reading names files, and encoding names for training.

The corpus ships with the project in ``data/`` at the top of the checkout, so a clone with
nothing beside it trains, evaluates and tests. ``DINO_CORPUS_DIR`` points elsewhere (an
install without ``-e`` has no checkout, and must set it).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import CorpusError, InvalidName
from .vocab import encode_batch, normalize_name

TRAIN_FILE = "dinos_train.txt"
VAL_FILE = "dinos_val.txt"
PACKAGE_DIR = Path(__file__).resolve().parent
BASE_CHECKPOINT = PACKAGE_DIR / "checkpoints" / "base.npz"


Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # inputs, targets, mask: (names, steps) each
SHIPPED_CORPUS_DIR = PACKAGE_DIR.parent / "data"


def corpus_dir() -> Path:
    """``$DINO_CORPUS_DIR``, else the ``data/`` folder the corpus ships in."""
    configured = os.environ.get("DINO_CORPUS_DIR")
    if configured:
        return Path(configured).expanduser()
    return SHIPPED_CORPUS_DIR


def train_path() -> Path:
    """The training names: the only file the base model is trained on."""
    return corpus_dir() / TRAIN_FILE


def val_path() -> Path:
    """The validation names: model selection, early stopping and reported quality."""
    return corpus_dir() / VAL_FILE


def read_names(path: str | os.PathLike) -> list[str]:
    """Names from a file, one a line; blank lines are skipped, duplicates kept once.

    Any line that is not a valid name stops the read with its line number, so a typo in a
    corpus is fixed rather than silently trained on.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorpusError(f"names file not found: {path} (set DINO_CORPUS_DIR to the folder holding "
                          f"{TRAIN_FILE} and {VAL_FILE}, or pass a path)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read names file {path}: {exc}") from None
    names: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            names[normalize_name(line)] = None
        except InvalidName as exc:
            raise CorpusError(f"{path}, line {number}: {exc}") from None
    if not names:
        raise CorpusError(f"names file {path} holds no names")
    return list(names)


class EncodedCorpus:
    """Names encoded once into padded arrays, served as length-bucketed shuffled batches."""

    def __init__(self, names: Sequence[str]):
        if not names:
            raise ValueError("cannot train on an empty list of names")
        self.lengths = np.array([len(n) + 1 for n in names])
        self.inputs, self.targets, self.mask = encode_batch(list(names))
        self.chars = int(self.mask.sum())

    def __len__(self) -> int:
        return len(self.lengths)

    def in_length_order(self, batch_size: int) -> Iterator[Batch]:
        """Every name once, shortest first, for evaluation: (inputs, targets, mask) batches."""
        order = np.argsort(self.lengths, kind="stable")
        for i in range(0, len(order), batch_size):
            yield self._batch(order[i : i + batch_size])

    def _batch(self, idx: np.ndarray) -> Batch:
        steps = int(self.lengths[idx].max())
        return self.inputs[idx, :steps], self.targets[idx, :steps], self.mask[idx, :steps]

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
        """Yield (inputs, targets, mask) batches of similar-length names in random order."""
        order = np.lexsort((rng.random(len(self)), self.lengths))  # by length, ties shuffled
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for k in rng.permutation(len(chunks)):
            yield self._batch(chunks[k])
