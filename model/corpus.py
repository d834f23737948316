"""Reading names files and finding the training corpus.

The corpus is never copied into the repository: by default it is read from the
``shared/data`` folder beside the checkout, and ``DINO_CORPUS_DIR`` points elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import CorpusError, InvalidName
from .vocab import normalize_name

TRAIN_FILE = "dinos_train.txt"
VAL_FILE = "dinos_val.txt"
PACKAGE_DIR = Path(__file__).resolve().parent
BASE_CHECKPOINT = PACKAGE_DIR / "checkpoints" / "base.npz"


def corpus_dir() -> Path:
    """``$DINO_CORPUS_DIR``, else ``../shared/data`` next to the project checkout."""
    configured = os.environ.get("DINO_CORPUS_DIR")
    if configured:
        return Path(configured).expanduser()
    return PACKAGE_DIR.parent.parent / "shared" / "data"


def train_path() -> Path:
    return corpus_dir() / TRAIN_FILE


def val_path() -> Path:
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
        raise CorpusError(f"names file not found: {path} (set DINO_CORPUS_DIR or pass a path)") from None
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
