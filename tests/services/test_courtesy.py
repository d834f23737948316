"""Background training gives way to interactions, within a budget, and never starves."""
from __future__ import annotations

import threading
import time

import pytest

from bot.services.training.courtesy import Courtesy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_returns_at_once_when_the_bot_is_quiet():
    clock = Clock()
    courtesy = Courtesy(lambda: clock.now - 5.0, quiet=0.2, clock=clock, sleep=clock.sleep)
    clock.now += 10
    courtesy()
    assert courtesy.paused == 0.0 and clock.now == 110.0


def test_a_burst_at_the_very_start_is_waited_out_thanks_to_the_grace():
    clock = Clock()
    courtesy = Courtesy(lambda: 100.0, quiet=0.2, max_share=0.5, grace=1.0, clock=clock, sleep=clock.sleep)
    courtesy()  # the fine-tune has only just started: no share of its running time yet
    assert clock.now == pytest.approx(100.2, abs=0.006)


def test_waits_out_a_burst_then_carries_on():
    clock = Clock()
    courtesy = Courtesy(lambda: 105.0, quiet=0.2, max_share=0.9, clock=clock, sleep=clock.sleep)
    clock.now = 105.05  # an interaction 50 ms ago, training has run 5 s
    courtesy()
    assert clock.now == pytest.approx(105.2, abs=0.006)  # resumed once 0.2 s had passed


def test_never_pauses_more_than_its_share_under_constant_load():
    clock = Clock()
    courtesy = Courtesy(lambda: clock.now, quiet=0.2, max_share=0.5, grace=1.0, clock=clock, sleep=clock.sleep)
    for _ in range(1000):  # every batch finds the bot busy
        courtesy()
        clock.now += 0.003  # one batch of training
    elapsed = clock.now - courtesy.started
    assert courtesy.paused <= 1.0 + 0.5 * elapsed + 0.01
    assert elapsed - courtesy.paused >= 2.9  # all 1000 batches ran


def test_rejects_a_share_that_could_starve_training():
    with pytest.raises(ValueError):
        Courtesy(time.monotonic, max_share=1.0)


async def test_a_running_fine_tune_pauses_while_interactions_arrive(fake, tmp_path):
    """Real bot, real training thread: the trainer's courtesy hook sees the bot's interactions."""
    from dataclasses import replace

    from model import TrainConfig
    from tests.support.harness import ADMIN, GUILD_A, Harness, make_config

    config = make_config(tmp_path / "data")
    slow = replace(config.training, train_config=TrainConfig(epochs=200, patience=200))
    harness = Harness(fake, replace(config, training=slow))
    bot = await harness.start()
    paused = threading.Event()
    original = Courtesy.__call__

    def spy(self: Courtesy) -> None:
        before = self.paused
        original(self)
        if self.paused > before:
            paused.set()

    Courtesy.__call__ = spy
    try:
        for user in range(6):
            await bot.store.names.submit(GUILD_A, 9000 + user, f"zorgo{'abcdef'[user]}saurus")
        job = await bot.trainer.request(GUILD_A, ADMIN.id)
        await fake.wait_until(lambda: job.snapshot.progress is not None, timeout=30, what="the first epoch")
        deadline = time.monotonic() + 10
        while not paused.is_set() and time.monotonic() < deadline:
            await (await fake.slash("dinoinfo")).response()
        assert paused.is_set() and not job.done
        await bot.trainer.cancel(GUILD_A, ADMIN.id)
        assert not (await job.wait()).promoted
    finally:
        Courtesy.__call__ = original
        await harness.stop()
