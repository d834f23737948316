"""Background training gives way to members' interactions.

Both cores are shared by the event loop, the sampling thread and the training thread, and the
GIL makes every socket send on the loop wait for the training thread's turn to end. So between
mini-batches the training thread checks when the last interaction arrived and, while the bot is
busy, sleeps (holding neither the GIL nor a core). Beyond a first ``grace`` period it never pauses
for more than ``max_share`` of its own running time, so a constant stream of interactions slows a
fine-tune down (by at most ``grace`` plus a factor 1 / (1 - max_share)) but can never starve it.
"""
from __future__ import annotations

import time
from typing import Callable

MIN_SLEEP = 0.005


class Courtesy:
    """Called by the training thread between batches; returns once the bot is quiet (or the
    pause budget is spent). ``last_activity`` returns a ``time.monotonic()`` timestamp and is
    read from the training thread, so it must be cheap and thread-safe (an attribute read)."""

    def __init__(self, last_activity: Callable[[], float], quiet: float = 0.2, max_share: float = 0.5,
                 grace: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0.0 <= max_share < 1.0:
            raise ValueError(f"max_share must be in [0, 1), not {max_share}")
        self._last_activity = last_activity
        self.quiet = quiet
        self.max_share = max_share
        self.grace = grace
        self._clock = clock
        self._sleep = sleep
        self.started = clock()
        self.paused = 0.0

    def __call__(self) -> None:
        while True:
            now = self._clock()
            quiet_in = self.quiet - (now - self._last_activity())  # > 0: the bot is busy
            budget = self.grace + self.max_share * (now - self.started) - self.paused
            if quiet_in <= 0 or budget < MIN_SLEEP:
                return
            # Sleep until the bot would be quiet (or the budget ends), not in short polls: each
            # wake-up has to take the GIL back from the event loop in the middle of its burst.
            self._sleep(max(MIN_SLEEP, min(quiet_in, budget)))
            self.paused += self._clock() - now
