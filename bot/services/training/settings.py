"""Knobs of the per-server models and the training service, as one plain dataclass.

``bot/config.py`` (which reads the environment) builds one of these; tests build tiny ones.
Nothing here reads files or the environment, so the services stay easy to test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from model import TrainConfig


@dataclass(frozen=True)
class TrainingSettings:
    """How fine-tunes are triggered, run and judged.

    ``tolerance`` is in nats per character: how much worse on the base samples a fine-tune may be
    and still be promoted (model.decide_promotion); None uses each server's strength's own.
    ``train_config`` and ``replay_ratio`` override the strength's recipe (tests use tiny ones).
    """

    min_names: int = 20  # approved names a server needs before it can be fine-tuned
    min_new_names: int = 20  # the scheduler fine-tunes servers with this many untrained names
    schedule_minutes: float = 60.0  # how often the scheduler looks; 0 switches it off
    tolerance: float | None = None
    holdout_fraction: float = 0.1  # of the server's names, kept out of training for validation
    min_holdout: int = 2
    base_val_samples: int = 300  # base-model samples that measure forgetting when no val names are configured
    base_val_seed: int = 20_240_601
    replay_ratio: float | None = None  # replayed names per server name, every epoch
    train_config: TrainConfig | None = None
    # A fine-tune's cost must not grow with the server (issue 8: at ~2,800 names without a base
    # corpus it asked for more replay than the model can draw; at 500k names it spent 112 s
    # before its first epoch). It uses at most ``max_names`` approved names (or ``min_names``
    # if that is larger): the newest ones no version has trained on (``recent_share`` of the
    # cap), the rest drawn at random from all the others. And it trains for at most
    # ``time_budget`` seconds (split evenly between the ensemble's members, checked after each
    # epoch); None: no limit.
    max_names: int = 2000
    recent_share: float = 0.5
    time_budget: float | None = 60.0
    # A scheduled server whose fine-tune failed is retried after ``retry_minutes``, doubled
    # after every further failure up to ``max_retry_minutes``, rather than at every tick.
    retry_minutes: float = 120.0
    max_retry_minutes: float = 24 * 60.0
    max_cached_models: int = 8  # fine-tuned models kept in memory (the base is always kept)
    outcome_samples: int = 5  # names sampled from a new model for the admin's report
    # While a fine-tune runs, set sys.setswitchinterval to this (seconds), restoring it after;
    # None leaves the interpreter's 5 ms, which the README's service benchmark found no worse.
    switch_interval: float | None = None
    # A running fine-tune holds a lease on its job row, renewed every third of this; a process
    # that dies stops renewing, and the job may run again (anywhere) once the lease expires.
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.base_val_samples < 1:
            raise ValueError("base_val_samples must be at least 1: promotion weighs what the base style loses")
        if self.min_holdout < 1:
            raise ValueError("min_holdout must be at least 1: validation needs server names")
        if self.min_names < self.min_holdout + 1:
            raise ValueError(f"min_names must leave at least one training name after "
                             f"{self.min_holdout} held out, not {self.min_names}")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), not {self.holdout_fraction}")
        if self.min_new_names < 1 or self.max_cached_models < 0 or self.schedule_minutes < 0:
            raise ValueError("min_new_names must be >= 1; max_cached_models and "
                             "schedule_minutes must be >= 0")
        if self.max_names < 2:
            raise ValueError(f"max_names must be at least 2 (one to train on, one held out), not {self.max_names}")
        if not 0.0 <= self.recent_share <= 1.0:
            raise ValueError(f"recent_share must be in [0, 1], not {self.recent_share}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ValueError(f"time_budget must be positive or None, not {self.time_budget}")
        if not 0 < self.retry_minutes <= self.max_retry_minutes:
            raise ValueError("need 0 < retry_minutes <= max_retry_minutes")
        if not (self.lease_seconds > 0 and math.isfinite(self.lease_seconds)):
            raise ValueError(f"lease_seconds must be positive, not {self.lease_seconds}")
        if not ((self.tolerance is None or math.isfinite(self.tolerance)) and math.isfinite(self.schedule_minutes)):
            # NaN compares False with everything: a NaN tolerance would promote any result.
            raise ValueError(f"tolerance and schedule_minutes must be finite, not {self.tolerance} "
                             f"and {self.schedule_minutes}")
        if self.switch_interval is not None and not self.switch_interval > 0:
            raise ValueError(f"switch_interval must be positive, not {self.switch_interval}")
