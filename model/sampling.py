"""Inventing names: batched sampling with a prefix, temperature, top-k, a length cap and an
avoid-set; and scoring how dinosaur-like a given name is.

All requested names advance together, one batched step per letter. A prefix shared by the
whole batch is run once for a single row and its state copied to every row, so a long prefix
costs the same for 1 or 1 000 names; rows with prefixes of their own feed them letter by letter
in the same batched steps (:func:`sample_many`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Container, Sequence

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


@dataclass(frozen=True)
class NameRequest:
    """One caller's share of a batched draw (see :func:`sample_many`)."""

    count: int
    prefix: str = ""
    temperature: float = 1.0
    avoid: Container[str] = frozenset()  # only ever asked ``name in avoid``


def sample_names(model: NameModel, n: int, *, prefix: str | None = "", temperature: float = 1.0,
                 top_k: int | None = None, max_len: int = MAX_NAME_LEN, min_len: int = MIN_NAME_LEN,
                 avoid: Container[str] = frozenset(), rng: np.random.Generator | int | None = None,
                 max_rounds: int = 8) -> list[Sample]:
    """Up to ``n`` distinct names that start with ``prefix`` and are not in ``avoid``.

    Names that would end before ``min_len`` letters are continued instead (their end symbol is
    masked). Names cut at ``max_len`` come back with ``complete=False`` rather than passing for
    whole names. Fewer than ``n`` come back only if ``max_rounds`` batches could not find
    enough new names (a tiny prefix space, a very low temperature): callers should say so.
    ``rng`` may be a Generator, a seed, or None for fresh entropy.

    ``avoid`` is only ever asked ``name in avoid``, never copied or iterated, so a set of
    100 000 names costs nothing per call, and a live view that grows meanwhile is fine.
    """
    request = NameRequest(n, normalize_prefix(prefix), temperature, avoid)
    return sample_many(model, [request], top_k=top_k, max_len=max_len, min_len=min_len, rng=rng,
                       max_rounds=max_rounds)[0]


def sample_many(model: NameModel, requests: Sequence[NameRequest], *, top_k: int | None = None,
                max_len: int = MAX_NAME_LEN, min_len: int = MIN_NAME_LEN,
                rng: np.random.Generator | int | None = None, max_rounds: int = 8) -> list[list[Sample]]:
    """:func:`sample_names` for several independent requests at once, in one batch per round.

    Requests may differ in prefix and temperature: each row runs its own prefix and samples at
    its own temperature, so 200 requests with 200 prefixes cost one batched pass, not 200.
    Every request gets rows of its own and filters them by its own ``avoid`` only, so its names
    come from exactly the distribution they would come from alone: what one request avoids
    never changes what another gets. Names are distinct within a request, not across requests.
    A request still short after a round gets more rows in the next, up to ``max_rounds``.
    """
    requests = [replace(r, prefix=normalize_prefix(r.prefix)) for r in requests]
    for r in requests:
        _check_options(r.count, r.temperature, top_k, max_len, min_len, r.prefix)
    rng = np.random.default_rng(rng)  # a Generator is used as is; an int seeds a new one
    found: list[list[Sample]] = [[] for _ in requests]
    taken: list[set[str]] = [set() for _ in requests]
    for round_ in range(max_rounds):
        short = [(i, r.count - len(found[i])) for i, r in enumerate(requests) if len(found[i]) < r.count]
        if not short:
            break
        rows = [_rows(need, round_, bool(requests[i].avoid)) for i, need in short]
        row_requests = [requests[i] for (i, _), count in zip(short, rows, strict=True) for _ in range(count)]
        drawn = _draw_rows(model, row_requests, top_k, max_len, min_len, rng)
        start = 0
        for (i, _), count in zip(short, rows, strict=True):
            request, mine, names = requests[i], found[i], taken[i]
            for sample in drawn[start : start + count]:
                if sample.name not in names and sample.name not in request.avoid:
                    names.add(sample.name)
                    mine.append(sample)
                    if len(mine) == request.count:
                        break
            start += count
    return found


def _rows(need: int, round_: int, avoiding: bool) -> int:
    """Rows to draw for ``need`` more names: a few spare ones for duplicates in the first
    round (a few more if some names are avoided), many more once names keep colliding."""
    if round_ == 0:
        return need + need // (4 if avoiding else 16) + 2
    return min(MAX_SAMPLES, need * 2 + 8)


def _draw_rows(model: NameModel, rows: list[NameRequest], top_k: int | None, max_len: int, min_len: int,
               rng: np.random.Generator) -> list[Sample]:
    """One independent draw per row, in batches of at most MAX_SAMPLES rows."""
    drawn: list[Sample] = []
    for start in range(0, len(rows), MAX_SAMPLES):
        chunk = rows[start : start + MAX_SAMPLES]
        prefixes = {r.prefix for r in chunk}
        temperatures = {r.temperature for r in chunk}
        drawn += _draw(model, len(chunk),
                       prefixes.pop() if len(prefixes) == 1 else [r.prefix for r in chunk],
                       temperatures.pop() if len(temperatures) == 1 else np.array([r.temperature for r in chunk]),
                       top_k, max_len, min_len, rng)
    return drawn


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


def _draw(model: NameModel, batch: int, prefix: str | list[str], temperature: float | np.ndarray,
          top_k: int | None, max_len: int, min_len: int, rng: np.random.Generator) -> list[Sample]:
    """``batch`` independent names. ``prefix`` and ``temperature`` are one for all rows, or one
    per row (a list and an array): rows then feed their own prefix letters instead of sampling
    until it is used up."""
    letters = np.zeros((batch, max_len), dtype=np.int64)
    if isinstance(prefix, str):  # one prefix: run it once, copy its state to every row
        probs, state = _primed(model, prefix, batch)
        letters[:, : len(prefix)] = encode(prefix)
        first, lengths = len(prefix), None
    else:
        for row, text in enumerate(prefix):
            letters[row, : len(text)] = encode(text)
        probs, state = model.step(np.full(batch, -1), model.zero_state(batch))
        first, lengths = 0, np.array([len(text) for text in prefix])
    ended = np.zeros(batch, dtype=bool)
    active = np.arange(batch)  # rows still writing; finished rows leave the batch
    for pos in range(first, max_len):
        if pos < min_len:
            probs = probs.copy()
            probs[:, END_ID] = 0.0
        rows_temperature = temperature if np.isscalar(temperature) else temperature[active]
        ids = _pick(probs, rows_temperature, top_k, rng)
        if lengths is not None:  # rows still inside their prefix feed its next letter
            ids = np.where(pos < lengths[active], letters[active, pos], ids)
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


def _pick(probs: np.ndarray, temperature: float | np.ndarray, top_k: int | None,
          rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row, vectorised through the cumulative distribution.

    ``temperature`` is one for all rows or one per row."""
    p = probs.astype(np.float64)
    if np.isscalar(temperature):
        if temperature != 1.0:  # scale by the row maximum first so a low temperature cannot underflow
            p = np.power(p / p.max(axis=1, keepdims=True), 1.0 / temperature)
    else:
        p = np.power(p / p.max(axis=1, keepdims=True), 1.0 / temperature[:, None])
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
