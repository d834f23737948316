"""How the networks and the n-gram are combined: a weighted geometric mean, fitted on val.

The mixture is ``p(w) ∝ p_net(w)**(1 - λ) · p_ngram(w)**λ`` (log-linear interpolation). A
letter both models find likely stays likely, and one that either rules out is ruled out, which
suits two models that fail differently: the n-gram knows exact spellings, the networks
generalise. The weight λ depends on how much history the n-gram matched (the length of its
longest seen context): after a long context it deserves more say than where it had to back
off to a letter or two. A length with fewer than :data:`MIN_POSITIONS` validation positions
shares the weight fitted on all of them.

Why this form: on five train folds held out in turn (``benchmarks/bench_model.py heldout``,
figures in the README) a weight per context length beat one geometric weight, which beat linear
interpolation, in every fold. Why the exponents sum to 1: free exponents score a little better on
val but sharpen the distribution, and sampling then copies training names (README, the zoo).

For every group of positions the validation NLL is convex in λ (a log-sum-exp of linear
functions minus a linear term), so a few Newton steps find the exact optimum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

_TINY = 1e-30  # floor before taking logs: a float underflow must not become -inf
MIN_POSITIONS = 200  # 100 and 300 scored the same on held-out names; 200 pools the first letter
# The scales :func:`spend_budget` tries, 1 down to 0.4 (below that the networks alone speak at
# most context lengths, and their spelling is the base style's loss).
SCALES = tuple(round(1.0 - 0.025 * k, 3) for k in range(25))


@dataclass(frozen=True)
class Mixing:
    """The n-gram's weight λ per matched context length (0 to order - 1 symbols)."""

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", tuple(float(v) for v in self.weights))
        if not self.weights:
            raise ValueError("mixing needs one weight per context length")
        for value in self.weights:
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"mixing weights must be within [0, 1], not {value}")

    @classmethod
    def uniform(cls, weight: float, lengths: int) -> "Mixing":
        """The same weight for every context length."""
        return cls((weight,) * lengths)

    def combine(self, net: np.ndarray, ngram: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Normalised geometric mean along the last axis; ``lengths``: each position's context length."""
        w = np.asarray(self.weights)[lengths][..., None]
        log = (1.0 - w) * np.log(np.maximum(net, _TINY)) + w * np.log(np.maximum(ngram, _TINY))
        log -= log.max(axis=-1, keepdims=True)
        np.exp(log, out=log)
        log /= log.sum(axis=-1, keepdims=True)
        return log


def fit_mixing(net: np.ndarray, ngram: np.ndarray, targets: np.ndarray, lengths: np.ndarray,
               order: int) -> Mixing:
    """Weights minimising the mean NLL of ``targets`` under the mixture, per context length.

    ``net`` and ``ngram`` are (N, V) next-symbol distributions at N predicted positions,
    ``lengths`` (N,) the n-gram's matched context length there (0 to ``order - 1``).
    """
    log_net, log_ngram = np.log(np.maximum(net, _TINY)), np.log(np.maximum(ngram, _TINY))
    overall = _newton(log_net, log_ngram, targets)
    return Mixing(tuple(_newton(log_net[lengths == k], log_ngram[lengths == k], targets[lengths == k])
                        if np.sum(lengths == k) >= MIN_POSITIONS else overall for k in range(order)))


def _newton(log_net: np.ndarray, log_ngram: np.ndarray, targets: np.ndarray, steps: int = 50) -> float:
    """The convex one-parameter fit: minimise mean(logsumexp(z) - z[target]), z = log_net + λ·diff."""
    if len(targets) == 0:
        return 0.5
    diff = log_ngram - log_net
    rows = np.arange(len(targets))
    w = 0.5
    for _ in range(steps):
        z = log_net + w * diff
        z -= z.max(axis=1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
        mean = (q * diff).sum(axis=1)
        grad = float((mean - diff[rows, targets]).mean())
        curvature = float((q * (diff - mean[:, None]) ** 2).sum(axis=1).mean())
        new = min(max(w - grad / max(curvature, 1e-12), 0.0), 1.0)
        if abs(new - w) < 1e-10:
            return new
        w = new
    return w


def mixture_nll(net: np.ndarray, ngram: np.ndarray, targets: np.ndarray, lengths: np.ndarray,
                mixing: Mixing) -> float:
    """Mean NLL (nats) of ``targets`` under the mixture: what :func:`fit_mixing` minimises."""
    probs = mixing.combine(net, ngram, lengths)
    return float(-np.log(probs[np.arange(len(targets)), targets]).mean())


def scaled(mixing: Mixing, scale: float) -> Mixing:
    """``mixing`` with every weight multiplied by ``scale`` (clipped to [0, 1])."""
    return Mixing(tuple(min(max(w * scale, 0.0), 1.0) for w in mixing.weights))


# (net (N, V), ngram (N, V), targets (N,), lengths (N,)), as model.ensemble.predictions gives:
# the arguments of mixture_nll before the weights.
Positions = tuple


def spend_budget(base: Positions, reference: Mixing, before: float, budget: float, *,
                 held: Positions | None = None, held_limit: float = math.inf,
                 scales: Sequence[float] = SCALES) -> tuple[float, float]:
    """(scale, nll): the smallest scale of ``reference``'s weights whose mixture NLL on the
    ``base`` positions is at most ``before + budget``, and that NLL. With ``held`` (a server's
    held-out names), a scale must also keep their NLL at most ``held_limit`` or at most what
    scale 1 gives them, whichever is higher: turning the n-gram down must never be what makes a
    fine-tune worse on the server's own names (the promotion rule's first test).

    Why: after a fine-tune the networks have learnt a server's style but the n-gram, counted
    mostly on the base corpus, still votes for the base style at every letter; with a weight of
    0.8 after a five-letter context it vetoes whatever it has not seen (README, "Style strength").
    Turning its weights down lets the networks' style through, and costs base names in a way
    that is cheap to measure for every scale: the positions' distributions are computed once,
    only the weights change. So the n-gram gets as little say as the strength's budget on base names allows: a
    style that is cheap for the base (a real family with headroom) goes further than one whose
    training already spent the budget. No scale within budget: 1 (the reference weights).
    """
    chosen = (1.0, mixture_nll(*base, reference))
    held_limit = max(held_limit, mixture_nll(*held, reference)) if held is not None else math.inf
    for scale in sorted((float(s) for s in scales if s < 1.0), reverse=True):
        mixing = scaled(reference, scale)
        nll = mixture_nll(*base, mixing)
        if nll > before + budget or (held is not None and mixture_nll(*held, mixing) > held_limit):
            break  # both only grow as the weights fall further
        chosen = (scale, nll)
    return chosen
