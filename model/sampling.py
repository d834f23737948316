"""Inventing names: batched sampling with a prefix, temperature, top-k, a length cap and an
avoid-set; and scoring how dinosaur-like a given name is.

All requested names advance together, one batched step per letter. The prefix is run once
for a single row and its state copied to every row, so a long prefix costs the same for 1 or
1 000 names.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Collection, Sequence

import numpy as np

from .ensemble import NameModel
from .errors import InvalidName
from .vocab import END_ID, MAX_NAME_LEN, MIN_NAME_LEN, decode_rows, encode, normalize_name, normalize_prefix

MAX_SAMPLES = 10_000


@dataclass(frozen=True)
class Sample:
    """A generated name. ``complete`` is False when it hit the length cap before ending."""

    name: str
    complete: bool = True


def sample_names(model: NameModel, n: int, *, prefix: str | None = "", temperature: float = 1.0,
                 top_k: int | None = None, max_len: int = MAX_NAME_LEN, min_len: int = MIN_NAME_LEN,
                 avoid: Collection[str] = (), rng: np.random.Generator | int | None = None,
                 max_rounds: int = 8) -> list[Sample]:
    """Up to ``n`` distinct names that start with ``prefix`` and are not in ``avoid``.

    Names that would end before ``min_len`` letters are continued instead (their end symbol is
    masked). Names cut at ``max_len`` come back with ``complete=False`` rather than passing for
    whole names. Fewer than ``n`` come back only if ``max_rounds`` batches could not find
    enough new names (a tiny prefix space, a very low temperature): callers should say so.
    ``rng`` may be a Generator, a seed, or None for fresh entropy.
    """
    prefix = normalize_prefix(prefix)
    _check_options(n, temperature, top_k, max_len, min_len, prefix)
    rng = np.random.default_rng(rng)  # a Generator is used as is; an int seeds a new one
    seen = set(avoid)
    found: list[Sample] = []
    for round_ in range(max_rounds):
        need = n - len(found)
        if need <= 0:
            break
        # A few spare rows cover duplicates within the batch (cheaper than a second round);
        # many more once names have started colliding with the avoid-set.
        batch = need + need // 16 + 2 if round_ == 0 and not seen else min(MAX_SAMPLES, need * 2 + 8)
        for sample in _draw(model, batch, prefix, temperature, top_k, max_len, min_len, rng):
            if sample.name not in seen:
                seen.add(sample.name)
                found.append(sample)
                if len(found) == n:
                    break
    return found


def _check_options(n: int, temperature: float, top_k: int | None, max_len: int, min_len: int,
                   prefix: str) -> None:
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"can sample 1–{MAX_SAMPLES} names at once, not {n}")
    if not (math.isfinite(temperature) and 0.05 <= temperature <= 5.0):
        raise ValueError(f"temperature must be between 0.05 and 5, not {temperature}")
    if top_k is not None and not 1 <= top_k <= 27:
        raise ValueError(f"top-k must be between 1 and 27, not {top_k}")
    if not 1 <= min_len <= max_len <= 256:
        raise ValueError(f"need 1 <= min_len ({min_len}) <= max_len ({max_len}) <= 256")
    if len(prefix) >= max_len:
        raise InvalidName(f"the prefix '{prefix}' leaves no room under the {max_len}-letter cap")


def _draw(model: NameModel, batch: int, prefix: str, temperature: float, top_k: int | None,
          max_len: int, min_len: int, rng: np.random.Generator) -> list[Sample]:
    probs, state = _primed(model, prefix, batch)
    letters = np.zeros((batch, max_len), dtype=np.int64)
    letters[:, : len(prefix)] = encode(prefix)
    ended = np.zeros(batch, dtype=bool)
    active = np.arange(batch)  # rows still writing; finished rows leave the batch
    for pos in range(len(prefix), max_len):
        if pos < min_len:
            probs = probs.copy()
            probs[:, END_ID] = 0.0
        ids = _pick(probs, temperature, top_k, rng)
        letters[active, pos] = ids
        going = ids != END_ID
        ended[active[~going]] = True
        if not going.any():
            break
        if not going.all():
            active, ids = active[going], ids[going]
            state = tuple(s[:, going] for s in state)
        probs, state = model.step(ids, state)
    return [Sample(name, bool(done)) for name, done in zip(decode_rows(letters), ended, strict=True)]


def _primed(model: NameModel, prefix: str, batch: int):
    """Run start + prefix for one row, then copy the probabilities and state to ``batch`` rows."""
    probs, state = model.step(np.array([-1]), model.zero_state(1))
    for letter in encode(prefix):
        probs, state = model.step(np.array([letter]), state)
    probs = np.repeat(probs, batch, axis=0)
    state = tuple(np.repeat(s, batch, axis=1) for s in state)
    return probs, state


def _pick(probs: np.ndarray, temperature: float, top_k: int | None, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row, vectorised through the cumulative distribution."""
    p = probs.astype(np.float64)
    if temperature != 1.0:  # scale by the row maximum first so a low temperature cannot underflow
        p = np.power(p / p.max(axis=1, keepdims=True), 1.0 / temperature)
    if top_k is not None and top_k < p.shape[1]:
        cutoff = np.partition(p, -top_k, axis=1)[:, -top_k][:, None]
        p = np.where(p >= cutoff, p, 0.0)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), p.shape[1] - 1)


def score_name(model: NameModel, name: str) -> float:
    """Mean NLL per character (nats) of ``name``: lower is more dinosaur-like.

    Uniform guessing scores ln 27 ≈ 3.30; the base model averages about 1.5 on unseen names.
    """
    total, count = model.nll([normalize_name(name)])
    return total / count


def score_names(model: NameModel, names: Sequence[str]) -> list[float]:
    """:func:`score_name` of each name, in order, in batched passes (a corpus at a time)."""
    normalized = [normalize_name(name) for name in names]
    if not normalized:
        return []
    return [float(score) for score in model.nll_per_name(normalized)]
