"""The model's alphabet and the one place where user text becomes a name.

Index 0 is the end-of-name symbol, 1..26 are ``a``..``z``. Keeping the end symbol at 0 matches
the corpus README and the PyTorch reference, so NLL figures are comparable.
"""
from __future__ import annotations

import unicodedata
from typing import Iterable

import numpy as np

from .errors import InvalidName

END = "\n"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
ALPHABET = END + LETTERS
VOCAB_SIZE = len(ALPHABET)
END_ID = 0
MIN_NAME_LEN = 3
MAX_NAME_LEN = 32
_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}
_ASCII_LETTERS = frozenset(LETTERS + LETTERS.upper())


def _describe(ch: str) -> str:
    """Name a rejected character so a user can see which one it was, even if invisible."""
    if ch.isspace():
        return "a space" if ch == " " else f"a whitespace character (U+{ord(ch):04X})"
    if ch.isdigit():
        return f"the digit '{ch}'"
    try:
        name = unicodedata.name(ch).lower()
    except ValueError:
        name = f"U+{ord(ch):04X}"
    return f"'{ch}' ({name})" if ch.isprintable() else f"U+{ord(ch):04X} ({name})"


def _clean(text: str, what: str, max_len: int) -> str:
    if not isinstance(text, str):
        raise InvalidName(f"a {what} must be text, not {type(text).__name__}")
    stripped = text.strip()
    if len(stripped) > max_len:
        raise InvalidName(f"a {what} is at most {max_len} letters; this one has {len(stripped)}")
    # Check before lower-casing: str.lower() maps look-alikes such as the Kelvin sign to 'k'.
    for ch in stripped:
        if ch not in _ASCII_LETTERS:
            raise InvalidName(f"{_describe(ch)} is not a letter a–z; a {what} uses only a–z")
    return stripped.lower()


def normalize_name(text: str, min_len: int = MIN_NAME_LEN, max_len: int = MAX_NAME_LEN) -> str:
    """Trim and lowercase ``text``; refuse anything that is not min_len..max_len letters a–z.

    Lower-casing happens before the check, so 'Tyrannosaurus' passes, while look-alikes such
    as the Cyrillic 'а' or the German 'ß' are refused by name rather than silently mapped.
    """
    cleaned = _clean(text, "name", max_len)
    if len(cleaned) < min_len:
        if not cleaned:
            raise InvalidName("a name cannot be empty")
        raise InvalidName(f"names are {min_len}–{max_len} letters; '{cleaned}' has {len(cleaned)}")
    return cleaned


def normalize_prefix(text: str | None, max_len: int = MAX_NAME_LEN - 1) -> str:
    """Like :func:`normalize_name` for the start of a name: empty (or None) means no prefix."""
    if text is None:
        return ""
    return _clean(text, "prefix", max_len)


def encode(name: str) -> list[int]:
    """Letter ids of an already-normalised name, without the end symbol."""
    return [_INDEX[ch] for ch in name]


def decode(ids: Iterable[int]) -> str:
    """Letters for ids, stopping at the first end symbol."""
    out = []
    for i in ids:
        if int(i) == END_ID:
            break
        out.append(ALPHABET[int(i)])
    return "".join(out)


_CHAR_TABLE = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)


def decode_rows(ids: np.ndarray) -> list[str]:
    """:func:`decode` for every row of a 2-D id array at once (sampling makes thousands)."""
    chars = _CHAR_TABLE[ids]
    flat = np.ascontiguousarray(chars).view(f"S{ids.shape[1]}").ravel()
    return [row.decode("ascii").split(END, 1)[0] for row in flat]


def encode_batch(names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad names into (inputs, targets, mask) arrays of shape (batch, longest + 1).

    Step 0's input is the start state (id -1: a zero vector); each name of n letters yields
    n + 1 targets (its letters, then the end symbol), exactly the corpus README's protocol.
    """
    steps = max(len(n) for n in names) + 1
    inputs = np.full((len(names), steps), -1, dtype=np.int64)
    targets = np.zeros((len(names), steps), dtype=np.int64)
    mask = np.zeros((len(names), steps), dtype=bool)
    for row, name in enumerate(names):
        ids = encode(name)
        inputs[row, 1 : len(ids) + 1] = ids
        targets[row, : len(ids)] = ids
        mask[row, : len(ids) + 1] = True
    return inputs, targets, mask
