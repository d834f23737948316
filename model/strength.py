"""How strongly a fine-tune pulls a model toward a server's names: ``subtle``, ``normal``, ``strong``.

Each strength is a recipe of a few numbers. The replay ratio sets the target: every epoch mixes
all of the server's names with ``replay_ratio`` times as many base names, so a model that fits
the mix gives the server's style about ``1 / (1 + replay_ratio)`` of its names, and pays for it
on base names with about ``ln(1 + 1 / replay_ratio)`` nats per *name* (spread over ~10 letters).
The learning rate and the step budget set how far toward that target one fine-tune goes; the
budget is the same for a server of 20 names or 2,000 (a small server's names repeat within an
epoch, a large server gets fewer epochs), so a strength means the same everywhere. The
last epoch's weights are kept, not the ones with the best validation loss: a validation set of
base names would always prefer the weights that changed least, which is exactly the fine-tune
no one can see. The n-gram weight says how often the server's names are counted into the
n-gram, and the base budget how much worse on base names (nats/char) the model may get when the
n-gram's mixing weights are then turned down to let the networks' style through
(:func:`model.mixing.spend_budget`): training longer does not make a style more visible (uptake
peaks after ~100 steps, then falls as the networks memorise the server's names), but the
n-gram's veto on contexts it never saw with the style holds it back at every letter. The budget
is what a strength spends, so a style that costs the base little goes further than one whose
training already cost the budget.

The figures behind each recipe are in the README ("Style strength") and come from
``benchmarks/bench_finetune.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .training import TrainConfig

# An epoch of a tiny server's mix would be a batch or two, with a validation pass after each;
# below this many names its server names are repeated (with replay to match) instead.
MIN_EPOCH_NAMES = 512


@dataclass(frozen=True)
class Strength:
    """One fine-tuning recipe (see the module docstring for what each number does)."""

    name: str
    replay_ratio: float  # replayed base names per server name
    lr: float  # Adam learning rate
    steps: int  # optimizer updates per ensemble member, about (whole epochs, at least one)
    tolerance: float  # how much worse on base names (nats/char) to accept for it when promoting
    ngram_weight: int = 1  # each server name counts this many times in the mixed-in n-gram
    # How much worse on base names (nats/char) the n-gram's weights may be turned down to let the
    # networks' style through (model.mixing.spend_budget); None keeps the weights. At most the
    # tolerance, so what the budget spends is promotable.
    budget: float | None = None

    def __post_init__(self) -> None:
        if not (self.replay_ratio > 0 and self.lr > 0 and self.steps >= 1 and self.tolerance >= 0
                and self.ngram_weight >= 1):
            raise ValueError(f"strength {self.name!r} needs a positive replay ratio, learning rate, "
                             f"step count and n-gram weight, and a tolerance of at least 0")
        if self.budget is not None and not 0 <= self.budget <= self.tolerance:
            raise ValueError(f"strength {self.name!r}: the base-name budget must be within 0 and the "
                             f"tolerance {self.tolerance:g}, not {self.budget}")

    def schedule(self, server_names: int, seed: int = 0) -> tuple[int, TrainConfig]:
        """(repeats, config) for a server with this many names: how often each epoch repeats
        them (so an epoch holds at least ``MIN_EPOCH_NAMES`` names), and the training loop's
        settings, whose epoch count makes about ``steps`` updates (no early stopping, the last
        epoch's weights kept)."""
        one_pass = server_names + max(1, round(self.replay_ratio * server_names))
        repeats = max(1, math.ceil(MIN_EPOCH_NAMES / one_pass))
        batch_size = TrainConfig.batch_size
        epochs = max(1, round(self.steps / math.ceil(repeats * one_pass / batch_size)))
        return repeats, TrainConfig(epochs=epochs, batch_size=batch_size, lr=self.lr, patience=epochs,
                                    keep_best=False, seed=seed)

    def within(self, tolerance: float | None) -> "Strength":
        """This recipe with its base-name budget cut to a tighter promotion tolerance than its
        own (an operator's; at least 0), so a fine-tune never spends what the verdict refuses."""
        if tolerance is None or self.budget is None or self.budget <= tolerance:
            return self
        return replace(self, budget=max(0.0, tolerance))

    def describe(self) -> str:
        budget = "" if self.budget is None else f", base budget {self.budget:g}"
        return (f"{self.name} (lr {self.lr:g}, ~{self.steps} steps, {self.replay_ratio:g}× replay, "
                f"n-gram weight {self.ngram_weight}{budget})")


STRENGTHS: dict[str, Strength] = {s.name: s for s in (
    Strength("subtle", replay_ratio=2.0, lr=5e-3, steps=192, tolerance=0.03, budget=0.02),
    Strength("normal", replay_ratio=1.0, lr=5e-3, steps=192, tolerance=0.06, ngram_weight=6, budget=0.05),
    Strength("strong", replay_ratio=0.5, lr=5e-3, steps=256, tolerance=0.12, ngram_weight=12, budget=0.09),
)}
DEFAULT_STRENGTH = "normal"


def get_strength(strength: str | Strength) -> Strength:
    """A :class:`Strength` by name (case-insensitive), or the one given."""
    if isinstance(strength, Strength):
        return strength
    found = STRENGTHS.get(str(strength).strip().lower())
    if found is None:
        raise ValueError(f"unknown strength {strength!r}; choose {', '.join(STRENGTHS)}")
    return found
