"""Mini-batch training with Adam, gradient clipping, per-epoch validation and early stopping.

Batches group names of similar length (shuffled within and across buckets every epoch) so
padding stays small, and the whole corpus is encoded once up front: the Python work per batch
is a slice, one forward/backward and one Adam update.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from .corpus import EncodedCorpus
from .ensemble import evaluate
from .network import CharModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. The defaults are the settings the shipped checkpoint was trained with."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 3e-3
    lr_decay: float = 1.0  # multiply the learning rate by this after every epoch
    weight_decay: float = 0.0  # decoupled (AdamW-style), on weight matrices only
    clip: float = 5.0
    clip_mode: str = "value"  # "value": each entry to [-clip, clip] like the seed; "norm": global norm
    patience: int = 6  # stop after this many epochs without a better validation loss
    seed: int = 0
    time_budget: float | None = None  # seconds of training, checked after each epoch
    # True: return the weights with the best validation loss (and stop early on it). False:
    # return the last epoch's weights, for recipes whose epoch count is the setting itself
    # (fine-tuning, where a validation set of base names would always prefer "change nothing").
    keep_best: bool = True

    def __post_init__(self) -> None:
        if self.clip_mode not in ("value", "norm"):
            raise ValueError(f"clip_mode must be 'value' or 'norm', not {self.clip_mode!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, not {self.lr}")


@dataclass(frozen=True)
class Progress:
    """A snapshot sent to the progress callback after every epoch.

    ``member``/``members`` count ensemble members, so ``fraction`` and ``eta`` cover the
    whole job, not just the network being trained right now.
    """

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    chars_per_sec: float
    elapsed: float
    member: int = 0
    members: int = 1
    last: bool = False  # this member's last epoch (all run, early stopping or the time budget)

    @property
    def fraction(self) -> float:
        done = 1.0 if self.last else self.epoch / self.epochs
        return min(1.0, (self.member + done) / self.members)

    @property
    def eta(self) -> float:
        """Seconds left if every remaining epoch is run (early stopping can only shorten it)."""
        done = self.fraction
        return self.elapsed / done * (1.0 - done) if done > 0 else float("inf")


@dataclass
class TrainResult:
    model: CharModel  # the weights with the best validation loss
    best_val_loss: float
    best_epoch: int
    epochs_run: int
    cancelled: bool
    stopped_early: bool
    seconds: float
    chars_per_sec: float
    history: list[Progress] = field(default_factory=list)


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


class Adam:
    """Adam with bias correction and optional decoupled weight decay, updating in place.

    The moments live in one flat array over all parameters and every operation writes into
    preallocated scratch: a handful of ufunc calls per step instead of a dozen per parameter,
    and no temporaries (at 128 hidden units each temporary is big enough that allocating it
    afresh costs page faults, which once dominated the update).
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.b1, self.b2, self.eps = betas[0], betas[1], eps
        self.t = 0
        dtype = np.result_type(*params.values())
        self._slices: dict[str, slice] = {}
        start = 0
        for k, p in params.items():
            self._slices[k] = slice(start, start + p.size)
            start += p.size
        self.m, self.v = np.zeros(start, dtype=dtype), np.zeros(start, dtype=dtype)
        self._g, self._tmp = np.empty(start, dtype=dtype), np.empty(start, dtype=dtype)

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        # The moments are kept as m / (1 - b1) and v / (1 - b2): the same Adam, with the
        # (1 - beta) factors moved out of the two moment updates (two and three passes over
        # every parameter instead of three and four) into the step size and epsilon.
        root = math.sqrt(1 - self.b2)
        scale = self.lr * math.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t) * (1 - self.b1) / root
        g, tmp, m, v = self._g, self._tmp, self.m, self.v
        for k, part in self._slices.items():
            g[part] = grads[k].reshape(-1)
        m *= self.b1
        m += g
        v *= self.b2
        np.multiply(g, g, out=tmp)
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps / root
        np.divide(m, tmp, out=g)
        g *= scale  # the update: lr_t * m / (sqrt(v) + eps) in the usual moments
        for k, p in self.params.items():
            if self.weight_decay and k in ("U", "W"):
                p *= 1 - self.lr * self.weight_decay
            p -= g[self._slices[k]].reshape(p.shape)


def clip_gradients(grads: dict[str, np.ndarray], clip: float, mode: str) -> None:
    """Clip in place: per value (the seed's rule) or by the global norm (PyTorch's rule)."""
    if mode == "value":
        for g in grads.values():
            np.clip(g, -clip, clip, out=g)
        return
    norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if norm > clip:
        for g in grads.values():
            g *= clip / norm


def train(model: CharModel, train_names: Sequence[str], val_names: Sequence[str],
          config: TrainConfig = TrainConfig(), progress: ProgressFn | None = None,
          should_stop: StopFn | None = None) -> TrainResult:
    """Train ``model`` in place and return the best weights seen on ``val_names``.

    ``should_stop`` is polled between batches (pass ``threading.Event().is_set`` to cancel
    from another thread); ``progress`` is called after every epoch, from this thread.
    """
    corpus = EncodedCorpus(train_names)
    return run_epochs(model, lambda rng: corpus, val_names, config, progress, should_stop)


def run_epochs(model: CharModel, corpus_for_epoch: Callable[[np.random.Generator], EncodedCorpus],
               val_names: Sequence[str], config: TrainConfig, progress: ProgressFn | None,
               should_stop: StopFn | None) -> TrainResult:
    """The training loop shared by :func:`train` and fine-tuning (which re-mixes every epoch)."""
    rng = np.random.default_rng(config.seed)
    opt = Adam(model.params, config.lr, config.weight_decay)
    best = model.copy()
    best_val, best_epoch = evaluate(model, val_names), 0
    history: list[Progress] = []
    spent, chars_seen, cancelled, epoch = 0.0, 0, False, 0
    stop = should_stop or (lambda: False)
    while epoch < config.epochs and not cancelled:
        epoch += 1
        corpus = corpus_for_epoch(rng)
        started, total, count = time.perf_counter(), 0.0, 0
        for inputs, targets, mask in corpus.batches(config.batch_size, rng):
            if stop():
                cancelled = True
                break
            loss, n, grads = model.loss_and_grads(inputs, targets, mask, rng)
            clip_gradients(grads, config.clip, config.clip_mode)
            opt.step(grads)
            total, count = total + loss, count + n
        spent += time.perf_counter() - started
        chars_seen += count
        if cancelled and count == 0:
            break
        val = evaluate(model, val_names)
        if not math.isfinite(val):
            log.warning("validation loss is %s at epoch %d: stopping, keeping the best weights", val, epoch)
            break
        if val < best_val or not config.keep_best:
            best, best_val, best_epoch = model.copy(), val, epoch
        last = (epoch >= config.epochs or epoch - best_epoch >= config.patience
                or (config.time_budget is not None and spent >= config.time_budget))
        snapshot = Progress(epoch, config.epochs, total / max(count, 1), val, best_val,
                            chars_seen / max(spent, 1e-9), spent, last=last and not cancelled)
        history.append(snapshot)
        if progress:
            progress(snapshot)
        opt.lr *= config.lr_decay
        if last:
            break
    stopped_early = not cancelled and epoch < config.epochs and epoch - best_epoch >= config.patience
    return TrainResult(best, best_val, best_epoch, epoch, cancelled, stopped_early, spent,
                       chars_seen / max(spent, 1e-9), history)


def with_overrides(config: TrainConfig, **changes) -> TrainConfig:
    """A copy of ``config`` with the given fields changed (None values are ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
