"""One fine-tune as plain data and plain functions: what to train on, the run, the verdict.

No asyncio and no database here, so each piece is easy to read and to test. The service
(:mod:`bot.services.training.service`) gathers a :class:`TrainingPlan` on the event loop, runs
:func:`run_fine_tune` in its training thread, and applies :func:`judge` to the result.

Both models are scored on the same two sets: the server's held-out names (what the server wanted
learned) and a fixed set of base names (what it may forget): the base model's validation
names, kept out of replay, when they are configured (``DINOBOT_BASE_VALIDATION``), else samples
of the base model. The model library's promotion rule (``model.decide_promotion``) weighs the
two; the server's strength setting says how hard the fine-tune pulls and, unless the operator
set one, how much forgetting it may cost.
"""
from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

from bot.services.registry import ServedModel
from model import (
    DEFAULT_STRENGTH,
    FitResult,
    Losses,
    NameModel,
    Progress,
    TrainConfig,
    Verdict,
    decide_promotion,
    evaluate,
    fine_tune,
    get_strength,
    replay_samples,
    sample_names,
)


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a fine-tune of one guild needs, gathered before it starts."""

    guild_id: int
    current: ServedModel  # the model being fine-tuned (and compared against)
    base: NameModel  # the shipped model: replays its samples when no corpus is configured
    train_names: tuple[str, ...]
    held_out: tuple[str, ...]
    base_samples: tuple[str, ...]  # the fixed base names that measure forgetting (val names or samples)
    replay_names: tuple[str, ...] | None  # the base corpus; None: base-model samples
    new_names: int  # names no earlier version used
    strength: str = DEFAULT_STRENGTH  # the server's setting: subtle, normal or strong
    replay_seed: int = 0

    @property
    def val_names(self) -> tuple[str, ...]:
        """Both validation sets together: what the progress bar's validation loss is on."""
        return self.held_out + self.base_samples

    @property
    def all_names(self) -> tuple[str, ...]:
        return self.train_names + self.held_out


@dataclass(frozen=True)
class TrainingRun:
    """What the training thread hands back to the event loop."""

    fit: FitResult
    before: Losses  # the current model on the base samples and the held-out names
    after: Losses  # the fine-tuned model on the same (NaN when cancelled or diverged)
    val_before: float  # the current model on both sets together (as recorded)
    train_before: float
    train_after: float
    samples: tuple[str, ...]


def base_validation_names(base: NameModel, count: int, seed: int) -> tuple[str, ...]:
    """The fixed base-model samples in every validation set (same seed, same names)."""
    return tuple(replay_samples(base, count, seed=seed)) if count > 0 else ()


def replay_pool(plan: TrainingPlan, ratio: float) -> tuple[str, ...]:
    """Names replayed to keep the base style: the corpus, else the *base* model's samples.

    Sampled from the base rather than from the model being fine-tuned (which is what
    ``fine_tune(replay_names=None)`` would do): a server's later versions would otherwise
    replay their own drift and compound it. Validation and server names are left out, so
    nothing the verdict is measured on is trained on. Twice what an epoch draws (at least
    200), so epochs see different replay.
    """
    if plan.replay_names is not None:
        return plan.replay_names
    wanted = max(200, math.ceil(ratio * len(plan.train_names)) * 2)
    avoid = set(plan.val_names) | set(plan.all_names)
    return tuple(replay_samples(plan.base, wanted, avoid=avoid, seed=plan.replay_seed))


def run_fine_tune(plan: TrainingPlan, config: TrainConfig | None, replay_ratio: float | None, samples: int,
                  progress: Callable[[Progress], None],
                  should_stop: Callable[[], bool], time_budget: float | None = None,
                  tolerance: float | None = None) -> TrainingRun:
    """Score the current model, fine-tune a copy, score it, sample a few names (blocking).

    ``config`` and ``replay_ratio`` override the server's strength when given (tests use tiny
    ones); None uses the strength's recipe. ``time_budget``: seconds of training at most.
    ``tolerance``: the operator's promotion tolerance, if set; the strength's budget on base
    names is cut to it (at least 0), so the fine-tune never spends what the verdict refuses.
    """
    current = plan.current.model
    train = list(plan.train_names)
    before = _losses(current, plan)
    val_before, train_before = evaluate(current, list(plan.val_names)), evaluate(current, train)
    if should_stop():  # each step before training takes a while: a cancel should not wait
        return _cancelled(current, before, val_before, train_before)
    strength = get_strength(plan.strength).within(tolerance)
    replay = replay_pool(plan, strength.replay_ratio if replay_ratio is None else replay_ratio)
    if should_stop():
        return _cancelled(current, before, val_before, train_before)
    fit = fine_tune(current, train, list(plan.val_names), replay_names=replay, replay_ratio=replay_ratio,
                    train_config=config, progress=progress, should_stop=should_stop,
                    strength=strength, seed=plan.replay_seed, time_budget=time_budget,
                    base_names=list(plan.base_samples), held_names=list(plan.held_out))
    usable = not fit.cancelled and math.isfinite(fit.val_loss)
    after = _losses(fit.model, plan) if usable else Losses(math.nan, math.nan)
    train_after = evaluate(fit.model, train) if usable else math.nan
    names = sample_names(fit.model, samples, avoid=set(plan.all_names)) if usable and samples else []
    return TrainingRun(fit, before, after, val_before, train_before, train_after,
                       tuple(s.name for s in names if s.complete))


def _losses(model: NameModel, plan: TrainingPlan) -> Losses:
    return Losses(base=evaluate(model, list(plan.base_samples)), server=evaluate(model, list(plan.held_out)))


def _cancelled(current: NameModel, before: Losses, val_before: float, train_before: float) -> TrainingRun:
    return TrainingRun(FitResult(current, math.nan, True, 0.0, 0, 0.0), before, Losses(math.nan, math.nan),
                       val_before, train_before, math.nan, ())


def judge(run: TrainingRun, strength: str, tolerance: float | None) -> Verdict:
    """The promotion rule applied to a run: the operator's tolerance, else the strength's own."""
    limit = get_strength(strength).tolerance if tolerance is None else tolerance
    return decide_promotion(run.before, run.after, limit)


@contextlib.contextmanager
def gil_switch_interval(seconds: float | None) -> Iterator[None]:
    """Run the block with a shorter GIL switch interval, then restore the previous one.

    The training thread holds the GIL between NumPy calls; with the default 5 ms the event
    loop can wait that long for every turn it asks for. The interval is interpreter-wide, so
    only the one training thread changes it, and only while it trains.
    """
    if seconds is None:
        yield
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
