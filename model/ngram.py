"""A character n-gram model with interpolated modified Kneser–Ney smoothing, in NumPy.

On a corpus this small a count model is a strong anchor (a 6-gram scores ~1.48 nats/char on
val, the three-LSTM ensemble ~1.51), and the two make different mistakes, so the name model
mixes their next-letter probabilities (:mod:`model.ensemble`).

**Counts.** Every name is read as ``^ letters $`` (``^`` a start symbol that is never
predicted, ``$`` the end symbol). Each predicted symbol with its history of at most
``order - 1`` symbols is one *maximal n-gram*; near the start of a name it is shorter and
begins with ``^``. Those counts are all the model stores: every lower-order count follows.

**Smoothing** (Chen & Goodman 1998, as KenLM does it). An n-gram of the highest order, or one
that begins with ``^`` (nothing can precede it), keeps its raw count; any other n-gram counts
the distinct symbols seen before it (its continuation count). Each order gets three discounts,
D1, D2 and D3+, from its count-of-counts, and

    P(w | h) = max(a(hw) - D(a(hw)), 0) / a(h·) + γ(h) · P(w | h minus its oldest symbol),
    γ(h) = (D1·N1(h·) + D2·N2(h·) + D3+·N3+(h·)) / a(h·),

down to the uniform distribution over the 27 symbols. A history never seen backs off whole.

**Lookups.** A context of L symbols is the base-29 number of its digits (symbol + 1, ``^`` =
28), so contexts of different lengths never collide and the last L symbols of a history are
``history % 29**L``. At construction the model computes the full 27-symbol distribution of
every seen context into one table of log-probabilities with sorted keys (14 k contexts, 1.5 MB
for order 6 on the train file), and a transition table: for every context and next symbol, the
row of the longest seen suffix of the extended history (another 1.5 MB). A row of the batch is then one integer,
and feeding it a letter is one gather, for 1 or 1 000 rows alike.

**Fine-tuning** keeps the base counts apart from the counts of the names a fine-tune added
(:meth:`NGramModel.adapted_to`), so fine-tuning a fine-tune on a server's current names
replaces the server's earlier counts instead of counting its names twice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .corpus import EncodedCorpus
from .vocab import VOCAB_SIZE

DEFAULT_ORDER = 6
MAX_ORDER = 12  # 29**12 fits comfortably in int64
BASE = 29  # digits: 0 = no symbol, 1..27 = symbols 0..26, 28 = the start of a name
START_DIGIT = 28
_FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclass(frozen=True, eq=False)
class NGramCounts:
    """Counts of maximal n-grams: sorted unique int64 keys (context digits then the symbol)."""

    keys: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_names(cls, names: Sequence[str], order: int) -> "NGramCounts":
        """Count every predicted symbol of ``names`` (already normalised) with its history."""
        if not names:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int64))
        corpus = EncodedCorpus(names)
        histories = history_keys(corpus.inputs.T, order)  # (T, B), time-major
        keys = histories.T * BASE + (corpus.targets + 1)
        keys, counts = np.unique(keys[corpus.mask], return_counts=True)
        return cls(keys.astype(np.int64), counts.astype(np.int64))

    def merged(self, other: "NGramCounts") -> "NGramCounts":
        keys, inverse = np.unique(np.concatenate([self.keys, other.keys]), return_inverse=True)
        weights = np.concatenate([self.counts, other.counts])
        counts = np.bincount(inverse, weights=weights, minlength=len(keys))
        return NGramCounts(keys, counts.astype(np.int64))

    def check(self, order: int) -> None:
        """Raise ValueError unless these are counts an n-gram model of ``order`` could have made."""
        keys, counts = self.keys, self.counts
        if keys.dtype != np.int64 or counts.dtype != np.int64 or keys.ndim != 1 or keys.shape != counts.shape:
            raise ValueError("n-gram keys and counts must be two int64 vectors of one length")
        if len(keys) and (np.any(np.diff(keys) <= 0) or keys[0] <= 0 or keys[-1] >= BASE ** order):
            raise ValueError(f"n-gram keys must be sorted, unique and hold at most {order} symbols")
        if np.any(counts <= 0):
            raise ValueError("n-gram counts must be positive")
        symbol = keys % BASE
        if np.any((symbol == 0) | (symbol == START_DIGIT)):
            raise ValueError("an n-gram key predicts no symbol, or predicts the start symbol")
        if order == 1:
            return  # unigram keys hold no history to check
        digits = _digits(keys // BASE, order - 1)  # (n, order - 1), oldest symbol first
        present = digits > 0
        # digits are contiguous (no gap), and the start symbol only comes first.
        if np.any(present[:, :-1] & ~present[:, 1:]):
            raise ValueError("an n-gram key has a gap in its history")
        first = np.argmax(present, axis=1)
        short = present.sum(axis=1) < order - 1
        if np.any(short & (digits[np.arange(len(keys)), first] != START_DIGIT)):
            raise ValueError("a short n-gram key does not begin at the start of a name")
        starts = digits == START_DIGIT
        starts[np.arange(len(keys)), first] = False
        if np.any(starts):
            raise ValueError("an n-gram key has the start symbol inside its history")


class NGramModel:
    """Interpolated modified Kneser–Ney over the 27 symbols. Immutable once built."""

    def __init__(self, order: int, counts: NGramCounts, adapted: NGramCounts | None = None):
        if not 1 <= order <= MAX_ORDER:
            raise ValueError(f"n-gram order must be 1–{MAX_ORDER}, not {order}")
        counts.check(order)
        if adapted is not None:
            adapted.check(order)
        self.order, self.counts, self.adapted = order, counts, adapted
        total = counts.merged(adapted) if adapted is not None else counts
        self.discounts, self.context_keys, table = _build(total, order)
        self.log_table = np.log(table)  # float32; mixing works in logs, and one table is enough
        self.context_length = _key_length(self.context_keys).astype(np.int8)  # symbols of each context
        start, empty = _row_of(self.context_keys, np.array([START_DIGIT, 0]))
        self.start_row = int(start if start >= 0 else empty)  # no names at all: the uniform row
        # One more column, read by id -1 (the start of a name): every row goes to the start row.
        # Row numbers in the narrowest type that holds them: the bot keeps a table per cached
        # fine-tuned model, and the shipped model's 14,098 rows fit 16 bits (half the memory).
        row_type = np.uint16 if len(self.context_keys) <= np.iinfo(np.uint16).max + 1 else np.int32
        self.transitions = np.empty((len(self.context_keys), VOCAB_SIZE + 1), dtype=row_type)
        self.transitions[:, :VOCAB_SIZE] = _transitions(self.context_keys, order)
        self.transitions[:, VOCAB_SIZE] = self.start_row

    @classmethod
    def from_names(cls, names: Sequence[str], order: int = DEFAULT_ORDER) -> "NGramModel":
        return cls(order, NGramCounts.from_names(names, order))

    def adapted_to(self, names: Sequence[str]) -> "NGramModel":
        """The base counts plus those of ``names`` (replacing any names added before)."""
        return NGramModel(self.order, self.counts, NGramCounts.from_names(names, self.order))

    # ------------------------------------------------------------------ checkpoint arrays
    def arrays(self) -> dict[str, np.ndarray]:
        out = {"keys": self.counts.keys, "counts": self.counts.counts}
        if self.adapted is not None:
            out.update(adapted_keys=self.adapted.keys, adapted_counts=self.adapted.counts)
        return out

    @classmethod
    def from_arrays(cls, order: int, arrays: dict[str, np.ndarray]) -> "NGramModel":
        """Rebuild from :meth:`arrays`; ValueError/KeyError if they are not a valid model."""
        unexpected = set(arrays) - {"keys", "counts", "adapted_keys", "adapted_counts"}
        if unexpected:
            raise ValueError(f"unexpected n-gram arrays {sorted(unexpected)}")
        adapted = None
        if "adapted_keys" in arrays or "adapted_counts" in arrays:
            adapted = NGramCounts(arrays["adapted_keys"], arrays["adapted_counts"])
        return cls(order, NGramCounts(arrays["keys"], arrays["counts"]), adapted)

    # ------------------------------------------------------------------ running
    def advance(self, rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Context rows after feeding one symbol per row (-1 = the start of a name)."""
        return self.transitions[rows, ids]

    @property
    def table(self) -> np.ndarray:
        """Every context's next-symbol distribution (contexts, 27), float32 (a fresh array)."""
        return np.exp(self.log_table)

    def probs(self, rows: np.ndarray) -> np.ndarray:
        """Next-symbol distributions (..., 27), float32, of context rows of any shape."""
        return np.exp(self.log_table[rows])

    def sequence_rows(self, inputs_tm: np.ndarray) -> np.ndarray:
        """Context rows (T, B) for time-major inputs (-1 = start): the history before each prediction."""
        rows = np.empty(inputs_tm.shape, dtype=np.int64)
        current = np.zeros(inputs_tm.shape[1], dtype=np.int64)
        for t, ids in enumerate(inputs_tm):
            current = rows[t] = self.advance(current, ids)
        return rows

    def sequence_probs(self, inputs_tm: np.ndarray) -> np.ndarray:
        """Next-symbol probabilities (T, B, 27) in float64 for time-major inputs (-1 = start)."""
        return self.probs(self.sequence_rows(inputs_tm)).astype(np.float64)


def history_keys(inputs_tm: np.ndarray, order: int) -> np.ndarray:
    """Key of the last ``order - 1`` inputs at every step of time-major inputs (T, B).

    Digits before the start of the array are 0 (no symbol), so early steps get shorter keys.
    """
    digits = np.where(inputs_tm < 0, START_DIGIT, inputs_tm + 1).astype(np.int64)
    keys = np.zeros(inputs_tm.shape, dtype=np.int64)
    for lag in range(order - 1):  # keys[t] = sum_lag digits[t - lag] * BASE**lag
        keys[lag:] += digits[: len(digits) - lag] * BASE ** lag
    return keys


def _row_of(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Rows of ``wanted`` in the sorted ``keys``, or -1 where absent."""
    rows = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[rows] == wanted, rows, -1)


def _transitions(keys: np.ndarray, order: int) -> np.ndarray:
    """next[row, s]: the row of the longest seen suffix of (the row's context + symbol s).

    Built like Aho–Corasick failure links, shortest contexts first: if context + s was seen
    it is the answer, else the answer is that of the context minus its oldest symbol (which
    is shorter, so already done). Sampling then follows one gather per step per row, instead of
    searching every suffix of every history, which alone would have broken the sampling target.
    """
    length = _key_length(keys)
    nxt = np.zeros((len(keys), VOCAB_SIZE), dtype=np.int32)
    empty = _row_of(keys, np.zeros(1, np.int64))[0]
    symbols = np.arange(1, VOCAB_SIZE + 1, dtype=np.int64)
    for n in range(order):  # contexts of n symbols
        rows = np.flatnonzero(length == n)
        if n == 0:
            fallback = np.full((len(rows), VOCAB_SIZE), empty, dtype=np.int32)
        else:
            fallback = nxt[_row_of(keys, keys[rows] % BASE ** (n - 1))]
        if n < order - 1:
            seen = _row_of(keys, keys[rows, None] * BASE + symbols[None, :])
            fallback = np.where(seen >= 0, seen, fallback)
        nxt[rows] = fallback
    return nxt


def _digits(keys: np.ndarray, width: int) -> np.ndarray:
    """Base-29 digits of ``keys`` as (n, width), most significant (oldest symbol) first."""
    powers = BASE ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (keys[:, None] // powers[None, :]) % BASE


def _build(total: NGramCounts, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(discounts (order, 3), sorted context keys, their distributions (contexts, 27) float32)."""
    levels = _level_counts(total, order)
    discounts = np.array([_discounts(a) for _, a in levels])
    keys_by_level, tables = [np.zeros(1, np.int64)], [np.full((1, VOCAB_SIZE), 1.0 / VOCAB_SIZE)]
    for n, (grams, adjusted) in enumerate(levels, start=1):
        contexts, table = _level_table(n, grams, adjusted, discounts[n - 1], keys_by_level[-1], tables[-1])
        keys_by_level.append(contexts)
        tables.append(table)
    # Level 0 is the uniform floor; level 1's only context (key 0, empty) replaces it.
    keys = np.concatenate(keys_by_level[1:]) if len(keys_by_level[1]) else keys_by_level[0]
    table = np.concatenate(tables[1:]) if len(keys_by_level[1]) else tables[0]
    order_of = np.argsort(keys, kind="stable")
    return discounts, keys[order_of], table[order_of].astype(np.float32)


def _level_counts(total: NGramCounts, order: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For n = 1..order: the n-grams' keys and their KN-adjusted counts."""
    length = _key_length(total.keys)
    raw = []
    for n in range(1, order + 1):
        reaches = length >= n
        keys, inverse = np.unique(total.keys[reaches] % BASE ** n, return_inverse=True)
        raw.append((keys, np.bincount(inverse, weights=total.counts[reaches], minlength=len(keys))))
    levels = []
    for n, (keys, counts) in enumerate(raw, start=1):
        if n < order:
            longer = raw[n][0]  # distinct (n + 1)-grams: each is one symbol seen before an n-gram
            continuation = np.bincount(np.searchsorted(keys, longer % BASE ** n), minlength=len(keys))
            starts_with_bos = keys // BASE ** (n - 1) == START_DIGIT
            counts = np.where(starts_with_bos, counts, continuation)
        levels.append((keys, counts.astype(np.float64)))
    return levels


def _key_length(keys: np.ndarray) -> np.ndarray:
    length = np.zeros(keys.shape, dtype=np.int64)
    rest = keys.copy()
    while np.any(rest > 0):
        length += rest > 0
        rest //= BASE
    return length


def _discounts(adjusted: np.ndarray) -> tuple[float, float, float]:
    """Chen & Goodman's D1, D2, D3+ from the count-of-counts n1..n4 of one order.

    A corpus too small to have every count-of-count (a fine-tune test, a handful of names)
    falls back to fixed discounts; each is kept within (0, k] so no probability goes negative.
    """
    n1, n2, n3, n4 = (float(np.sum(adjusted == k)) for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return _FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    raw = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    return tuple(float(min(max(d, 0.05 * k), k)) for k, d in enumerate(raw, start=1))


def _level_table(n: int, grams: np.ndarray, adjusted: np.ndarray, discounts: np.ndarray,
                 lower_keys: np.ndarray, lower_table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distributions of every context (n - 1 symbols) of order n, interpolated with order n - 1."""
    contexts, ctx_row = np.unique(grams // BASE, return_inverse=True)
    symbol = grams % BASE - 1
    d = discounts[np.minimum(adjusted, 3).astype(np.int64) - 1]
    totals = np.bincount(ctx_row, weights=adjusted, minlength=len(contexts))
    gamma = np.bincount(ctx_row, weights=d, minlength=len(contexts)) / totals
    if n == 1:  # the order below is the uniform floor
        lower_rows = np.zeros(len(contexts), dtype=np.int64)
    else:  # drop each context's oldest symbol; every suffix of a seen context was seen
        lower_rows = np.searchsorted(lower_keys, contexts % BASE ** (n - 2))
    table = gamma[:, None] * lower_table[lower_rows]
    np.add.at(table, (ctx_row, symbol), np.maximum(adjusted - d, 0.0) / totals[ctx_row])
    return contexts, table
