"""One fine-tune as plain data and plain functions: what to train on, the run, the verdict.

No asyncio and no database here, so each piece is easy to read and to test. The service
(:mod:`bot.training`) gathers a :class:`TrainingPlan` on the event loop, runs
:func:`run_fine_tune` in its training thread, and applies :func:`judge` to the result.

Validation is always "the server's held-out names + a fixed set of base-model samples", and
the current model is scored on exactly that set before training, so the two losses compare
like with like: the held-out names measure what the server wanted learned, the base samples
measure forgetting.
"""
from __future__ import annotations

import contextlib
import math
import sys
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from bot.services.registry import ServedModel
from model import FitResult, NameModel, Progress, TrainConfig, evaluate, fine_tune, replay_samples, sample_names


@dataclass(frozen=True)
class TrainingPlan:
    """Everything a fine-tune of one guild needs, gathered before it starts."""

    guild_id: int
    current: ServedModel  # the model being fine-tuned (and compared against)
    base: NameModel  # the shipped model: replays its samples when no corpus is configured
    train_names: tuple[str, ...]
    held_out: tuple[str, ...]
    val_names: tuple[str, ...]  # held_out + the fixed base samples
    replay_names: tuple[str, ...] | None  # the base corpus; None: base-model samples
    new_names: int  # names no earlier version used
    replay_seed: int = 0

    @property
    def all_names(self) -> tuple[str, ...]:
        return self.train_names + self.held_out


@dataclass(frozen=True)
class TrainingRun:
    """What the training thread hands back to the event loop."""

    fit: FitResult
    val_before: float
    train_before: float
    train_after: float
    samples: tuple[str, ...]


def split_holdout(names: Sequence[str], fraction: float,
                  minimum: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train, held_out): the held-out names are those with the smallest CRC-32.

    A hash, not a random draw, so a name tends to stay on the same side from one fine-tune to
    the next: a name an earlier version trained on rarely turns up in a later validation set,
    where it would flatter the current model.
    """
    count = min(len(names) - 1, max(minimum, round(fraction * len(names))))
    ranked = sorted(names, key=lambda n: (zlib.crc32(n.encode("utf-8")), n))
    held = set(ranked[:count])
    return tuple(n for n in names if n not in held), tuple(sorted(held))


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


def run_fine_tune(plan: TrainingPlan, config: TrainConfig, replay_ratio: float, samples: int,
                  progress: Callable[[Progress], None],
                  should_stop: Callable[[], bool]) -> TrainingRun:
    """Score the current model, fine-tune a copy, score it, sample a few names (blocking)."""
    current = plan.current.model
    val, train = list(plan.val_names), list(plan.train_names)
    val_before, train_before = evaluate(current, val), evaluate(current, train)
    if should_stop():  # each step before training takes a while: a cancel should not wait
        return _cancelled(current, val_before, train_before)
    replay = replay_pool(plan, replay_ratio)
    if should_stop():
        return _cancelled(current, val_before, train_before)
    fit = fine_tune(current, train, val, replay_names=replay, replay_ratio=replay_ratio,
                    train_config=config, progress=progress, should_stop=should_stop)
    usable = not fit.cancelled and math.isfinite(fit.val_loss)
    train_after = evaluate(fit.model, train) if usable else math.nan
    names = sample_names(fit.model, samples, avoid=set(plan.all_names)) if usable and samples else []
    return TrainingRun(fit, val_before, train_before, train_after,
                       tuple(s.name for s in names if s.complete))


def _cancelled(current: NameModel, val_before: float, train_before: float) -> TrainingRun:
    return TrainingRun(FitResult(current, math.nan, True, 0.0, 0, 0.0), val_before, train_before, math.nan, ())


def judge(before: float, after: float, tolerance: float) -> tuple[bool, str]:
    """(promote?, why) for validation losses before and after, in nats per character.

    Promoted: a finite ``after`` at most ``tolerance`` above ``before`` (exactly at the limit
    counts), or any finite ``after`` when ``before`` is not finite (the current model is broken).
    """
    if not math.isfinite(tolerance):  # a NaN limit would make "worse than allowed" never true
        raise ValueError(f"the promotion tolerance must be a finite number, not {tolerance}")
    if not math.isfinite(after):
        return False, f"discarded: the fine-tuned model's validation loss is {after}"
    if not math.isfinite(before):
        return True, f"promoted: validation loss {after:.3f} (the current model's was {before})"
    change = f"{before:.3f} → {after:.3f}"
    if after > before + tolerance:
        return False, (f"discarded: validation loss got worse ({change}, more than the "
                       f"{tolerance:g} allowed)")
    return True, f"promoted: validation loss {change}"


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
