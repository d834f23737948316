"""The training service on both backends, with real checkpoints and its real training thread.

Fine-tunes are real but tiny (the shipped model, two epochs, ~24 names: a fraction of a
second). Tests that need a job to stay running use ``SLOW``, which would train for hours and
always ends in a cancel.
"""
from __future__ import annotations

import asyncio
import math
import re
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest

from bot.errors import DinoBotError
from bot.services.registry import ModelRegistry, ServedModel
from bot.services.store import JobState, Store, VersionStatus
from bot.services.training.fine_tune import TrainingPlan, replay_pool, run_fine_tune
from bot.services.training.jobs import JobStatus, NotEnoughNames, TrainingJob
from bot.services.training.service import SHUTDOWN_REASON, TrainingService
from bot.services.training.settings import TrainingSettings
from model import MAX_SAMPLES, STRENGTHS, Losses, TrainConfig, fine_tune, sample_names, split_holdout
from tests.support.model_helpers import tiny_model

G1, G2, G3 = 1001, 1002, 1003
ADMIN = 77
FAST = TrainingSettings(min_names=5, min_new_names=5, schedule_minutes=0, base_val_samples=30,
                        train_config=TrainConfig(epochs=2, lr=2e-3, patience=2))
SLOW = replace(FAST, train_config=TrainConfig(epochs=100_000, lr=2e-3, patience=100_000),
               switch_interval=0.001)
NAMES = ("glimmerosaurus", "quillodon", "brontofex", "zephyraptor", "mossasaurus", "velvetops",
         "crumbleodon", "thistlerex", "pebblonyx", "rumblesaurus", "zorbasaurus", "kalimodon",
         "ferntops", "shalerex", "ambersaurus", "duskodon", "glaciraptor", "hollowceratops",
         "marrowsaurus", "nettlonyx", "ottervenator", "prismodon", "quartzosaurus", "ripplerex")


@pytest.fixture
async def registry(store: Store) -> ModelRegistry:
    registry = ModelRegistry(store)
    await registry.start()
    return registry


async def add_names(store: Store, guild: int, names=NAMES) -> None:
    for user, name in enumerate(names):
        await store.names.submit(guild, 5000 + user, name)


async def running(store, registry, settings=FAST, cls=TrainingService, **kwargs) -> TrainingService:
    service = cls(store, registry, settings, **kwargs)
    await service.start()
    return service


async def until(predicate, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


async def first_epoch(job: TrainingJob) -> None:
    async for snapshot in job.updates():
        if (snapshot.progress and snapshot.progress.epoch >= 1) or snapshot.status.finished:
            return


def samples(model) -> list[str]:
    return [s.name for s in sample_names(model, 8, rng=np.random.default_rng(5))]


# ----------------------------------------------------------------------------- promotion


async def test_a_fine_tune_is_promoted_saved_recorded_and_served(store, registry) -> None:
    await add_names(store, G1)
    async with await running(store, registry) as service:
        job = await service.request(G1, ADMIN)
        outcome = await job.wait()
    assert job.status is JobStatus.DONE and outcome.promoted, outcome.reason
    assert outcome.version == 1 and outcome.names_used == len(NAMES) == outcome.new_names
    assert outcome.reason.startswith("Promoted") and "held-out names" in outcome.reason
    assert outcome.samples and not set(outcome.samples) & set(NAMES)
    served = await registry.get(G1)
    assert served.version == 1 and served.names_count == len(NAMES)
    assert served.source == f"database: guild {G1} v1" and await store.versions.checkpoint(G1, 1) is not None
    (version,) = await store.versions.list(G1)
    assert version.status is VersionStatus.PROMOTED and version.checkpoint_path is None
    assert version.parent_version is None and version.requested_by == ADMIN
    assert await store.names.count_new(G1) == 0  # held-out names count as used too
    assert [a.action for a in await store.audit.recent(G1)] == ["finetune.request"]
    (row,) = await store.jobs.history(G1)
    assert (row.id, row.state, row.version, row.reason) == (job.id, JobState.DONE, 1, outcome.reason)
    restarted = ModelRegistry(store)  # another process, or this one after a restart
    await restarted.start()
    assert (await restarted.get(G1)).version == 1


async def test_one_guild_never_changes_what_another_is_served(store, registry) -> None:
    await add_names(store, G1)
    await add_names(store, G2, NAMES[:12])
    async with await running(store, registry) as service:
        assert (await (await service.request(G2, ADMIN)).wait()).promoted
        g2 = await registry.get(G2)
        g3 = await registry.get(G3)
        before = samples(g2.model), samples(g3.model)
        for _ in range(2):  # two versions of G1, parent chain 1 -> 2
            assert (await (await service.request(G1, ADMIN)).wait()).promoted
    assert (await registry.get(G1)).version == 2
    assert await registry.get(G2) is g2 and await registry.get(G3) is g3 is registry.base
    assert (samples(g2.model), samples(g3.model)) == before
    assert [v.version for v in await store.versions.list(G2)] == [1]
    assert (await store.versions.list(G1))[1].parent_version == 1


async def test_worse_result_is_discarded_and_recorded(store, registry) -> None:
    await add_names(store, G1)
    strict = replace(FAST, tolerance=-10.0)  # "must improve by 10 nats": impossible
    async with await running(store, registry, strict) as service:
        outcome = await (await service.request(G1, ADMIN)).wait()
    assert not outcome.promoted and "lost too much on the base names" in outcome.reason and outcome.version == 1
    assert outcome.samples == ()
    (version,) = await store.versions.list(G1)
    assert version.status is VersionStatus.DISCARDED and version.reason == outcome.reason
    assert await store.versions.checkpoint(G1, 1) is None
    assert (await registry.get(G1)).is_base
    assert await store.names.count_new(G1) == len(NAMES)  # not trained: still new


class NaNService(TrainingService):
    """Reports the fine-tuned model's validation loss as NaN, as a diverged run would."""

    def _train(self, plan, progress, should_stop):
        run = super()._train(plan, progress, should_stop)
        return replace(run, fit=replace(run.fit, val_loss=math.nan), after=Losses(math.nan, math.nan))


async def test_nan_result_is_discarded(store, registry) -> None:
    await add_names(store, G1)
    async with await running(store, registry, cls=NaNService) as service:
        outcome = await (await service.request(G1, ADMIN)).wait()
    assert not outcome.promoted and "nan" in outcome.reason
    (version,) = await store.versions.list(G1)
    assert version.status is VersionStatus.DISCARDED and version.val_loss_after is None
    assert (await registry.get(G1)).is_base


async def test_too_few_names_is_a_clear_error(store, registry) -> None:
    await add_names(store, G1, NAMES[:3])
    async with await running(store, registry) as service:
        with pytest.raises(NotEnoughNames) as caught:
            await service.request(G1, ADMIN)
    assert isinstance(caught.value, DinoBotError)
    assert str(caught.value) == "Fine-tuning needs at least 5 approved names; this server has 3."


def test_held_out_names_are_stable_and_never_all_of_them() -> None:
    train, held = split_holdout(NAMES, 0.1, 2)
    assert len(held) == 2 and set(train) | set(held) == set(NAMES) and not set(train) & set(held)
    assert split_holdout(list(reversed(NAMES)), 0.1, 2)[1] == held  # order does not matter
    assert len(split_holdout(NAMES[:2], 0.5, 2)[0]) == 1  # at least one name left to train on


def test_replay_is_the_corpus_or_base_samples_never_the_tuned_model_or_validation(
        registry) -> None:
    base = registry.base.model
    drifted = ServedModel(tiny_model(cell="lstm"), 3, 1.0, 0.0, 24, "v3")
    train, held = split_holdout(NAMES, 0.1, 2)
    val = (*held, "zorbasaurus", "rex")
    plan = TrainingPlan(G1, drifted, base, tuple(train), tuple(held), ("zorbasaurus", "rex"), None, 0, replay_seed=9)
    pool = replay_pool(plan, 2.0)
    assert len(pool) >= 190 and not set(pool) & (set(val) | set(NAMES))  # 200 drawn, the complete ones kept
    again = sample_names(base, 200, avoid=set(val) | set(NAMES), rng=np.random.default_rng(9))
    assert list(pool) == [s.name for s in again if s.complete]  # the base's, not the drifted
    assert replay_pool(replace(plan, replay_names=("corpusaurus",)), 2.0) == ("corpusaurus",)


def test_a_cancel_during_preparation_skips_replay_and_training(registry) -> None:
    base = registry.base.model
    train, held = split_holdout(NAMES, 0.1, 2)
    plan = TrainingPlan(G1, registry.base, base, tuple(train), tuple(held), ("rexosaurus",), None, 0)
    asked = []

    def stop() -> bool:
        asked.append(True)
        return True

    run = run_fine_tune(plan, FAST.train_config, 2.0, 5, lambda p: None, stop)
    assert run.fit.cancelled and run.fit.epochs_run == 0 and run.fit.model is base
    assert len(asked) == 1 and run.samples == ()


def test_the_strength_s_budget_is_spent_on_the_base_samples_the_verdict_weighs(monkeypatch) -> None:
    """The fine-tune turns the n-gram down only as far as the names promotion judges forgetting on
    allow (model.recipes.fine_tune's ``base_names``), and never so far that the server's held-out
    names get worse (``held_names``), so what its budget spends is promotable."""
    import bot.services.training.fine_tune as module

    seen = {}

    def recording(*args, **kwargs):
        seen.update(kwargs)
        return fine_tune(*args, **kwargs)

    monkeypatch.setattr(module, "fine_tune", recording)
    model = tiny_model(cell="lstm")
    train, held = split_holdout(NAMES, 0.1, 2)
    plan = TrainingPlan(G1, ServedModel(model, 0, 1.0, 0.0, 0, "base"), model, tuple(train), tuple(held),
                        ("zorbasaurus", "rexodon"), ("abcab",), 0)
    run_fine_tune(plan, FAST.train_config, 1.0, 0, lambda p: None, lambda: False)
    assert seen["base_names"] == ["zorbasaurus", "rexodon"] and seen["held_names"] == list(held)
    assert seen["strength"] == STRENGTHS["normal"]
    run_fine_tune(plan, FAST.train_config, 1.0, 0, lambda p: None, lambda: False, tolerance=0.01)
    assert seen["strength"].budget == 0.01  # an operator's tighter tolerance caps what it may spend


async def test_forgetting_is_judged_on_the_base_validation_names_which_are_never_replayed(
        store, registry, monkeypatch) -> None:
    import bot.services.training.service as module

    plans: list[TrainingPlan] = []

    def recording(plan, *args, **kwargs):
        plans.append(plan)
        return run_fine_tune(plan, *args, **kwargs)

    monkeypatch.setattr(module, "run_fine_tune", recording)
    corpus = tuple(f"{a}{b}osaurus" for a in "bcdfg" for b in "aeiou")  # 25 names
    val = corpus[:4]  # as with the defaults: the val file is part of the known corpus too
    await add_names(store, G1)
    async with await running(store, registry, replay_names=corpus, base_val_names=val) as service:
        job = await service.request(G1, ADMIN)
        await job.wait()
    plan = plans[0]
    assert plan.base_samples == val  # the real names, not the base model's samples
    assert plan.replay_names == corpus[4:]  # never trained on what the verdict is measured on


# ----------------------------------------------------------------------------- jobs and queue


async def test_progress_reaches_listeners_on_the_loop_thread(store, registry) -> None:
    await add_names(store, G1)
    seen: list[tuple[JobStatus, float, bool]] = []
    loop_thread = threading.current_thread()
    async with await running(store, registry) as service:
        job = await service.request(G1, ADMIN)
        job.add_listener(lambda s: seen.append(
            (s.status, s.fraction, threading.current_thread() is loop_thread)))
        snapshots = [s async for s in job.updates()]
    assert all(on_loop for _, _, on_loop in seen) and len(seen) >= 4
    statuses = [status for status, _, _ in seen]
    assert statuses[0] is JobStatus.RUNNING and statuses[-1] is JobStatus.DONE
    fractions = [f for _, f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    running_ones = [s for s in snapshots if s.status is JobStatus.RUNNING and s.progress]
    assert running_ones and running_ones[0].progress.members == len(registry.base.model.members)
    assert "% done" in running_ones[-1].describe() and snapshots[-1].outcome is not None


async def test_duplicate_request_joins_and_other_guilds_queue(store, registry) -> None:
    await add_names(store, G1)
    await add_names(store, G2, NAMES[:10])
    service = await running(store, registry, SLOW)
    try:
        job1 = await service.request(G1, ADMIN)
        job2 = await service.request(G2, ADMIN)
        await first_epoch(job1)
        assert await service.request(G1, ADMIN + 1, "admin") is job1
        assert (job1.status, job2.status) == (JobStatus.RUNNING, JobStatus.QUEUED)
        assert service.queued_guilds() == [G1, G2] and service.job(G2) is job2
        assert job1.snapshot.percent >= 0 and "running:" in job1.snapshot.describe()
        assert await service.cancel(G1, ADMIN)  # G2 starts once G1 has stopped
        await first_epoch(job2)
        assert job1.status is JobStatus.CANCELLED and job2.status is JobStatus.RUNNING
        assert job1.outcome.reason == "cancelled by an admin" and not job1.outcome.promoted
    finally:
        await service.close()
    assert job2.status is JobStatus.CANCELLED and job2.outcome.reason == SHUTDOWN_REASON
    assert await store.versions.list(G1) == [] == await store.versions.list(G2)  # cancels record nothing
    assert (await registry.get(G1)).is_base
    assert [a.action for a in await store.audit.recent(G1)] == ["finetune.cancel", "finetune.request"]
    history = {g: [(j.state, j.reason) for j in await store.jobs.history(g)] for g in (G1, G2)}
    assert history == {G1: [(JobState.CANCELLED, "cancelled by an admin")],
                       G2: [(JobState.CANCELLED, SHUTDOWN_REASON)]}


async def test_cancel_a_queued_job_and_nothing(store, registry) -> None:
    await add_names(store, G1)
    await add_names(store, G2, NAMES[:10])
    service = await running(store, registry, SLOW)
    try:
        job1 = await service.request(G1, None, "schedule")
        job2 = await service.request(G2, None, "schedule")
        assert await service.cancel(G2) and job2.status is JobStatus.CANCELLED
        assert "before it started" in job2.outcome.reason
        assert not await service.cancel(G2) and not await service.cancel(G3)
        assert service.queued_guilds() == [G1]
        assert (await service.request(G2, None, "schedule")) is not job2  # a fresh job
    finally:
        await service.close()
    assert job1.status is JobStatus.CANCELLED
    assert await store.audit.recent(G1) == []  # the schedule's requests are not admin actions
    assert [j.state for j in await store.jobs.history(G2)] == [JobState.CANCELLED] * 2
    assert await store.jobs.active() == []  # a shutdown cancels queued jobs too
    with pytest.raises(DinoBotError, match="not available"):
        await service.request(G1, ADMIN)


async def test_close_stops_a_running_fine_tune_quickly_and_restores_the_gil_interval(
        store, registry) -> None:
    await add_names(store, G1)
    interval = sys.getswitchinterval()
    service = await running(store, registry, SLOW)
    job = await service.request(G1, ADMIN)
    await first_epoch(job)
    assert sys.getswitchinterval() == SLOW.switch_interval  # lowered while training
    await asyncio.wait_for(service.close(), 5)
    assert job.status is JobStatus.CANCELLED and job.outcome.reason == SHUTDOWN_REASON
    assert sys.getswitchinterval() == interval
    assert not [t for t in threading.enumerate() if t.name.startswith("dinobot-train")]


# ----------------------------------------------------------------------------- scheduler


async def test_scheduler_picks_guilds_with_enough_new_names(store, registry) -> None:
    await add_names(store, G1)
    await add_names(store, G2, NAMES[:4])  # too few new names
    await add_names(store, G3)
    await store.settings.update(G3, ADMIN, schedule_enabled=False)
    async with await running(store, registry) as service:
        jobs = await service.scheduler.run_once()
        assert [j.guild_id for j in jobs] == [G1] and jobs[0].trigger == "schedule"
        assert (await jobs[0].wait()).promoted
        assert await service.scheduler.run_once() == []  # G1's names are all trained on now


async def test_scheduler_waits_for_new_names_after_a_discarded_attempt(store, registry) -> None:
    await add_names(store, G1, NAMES[:12])
    strict = replace(FAST, tolerance=-10.0)
    async with await running(store, registry, strict) as service:
        (job,) = await service.scheduler.run_once()
        assert not (await job.wait()).promoted
        assert await service.scheduler.run_once() == []  # same names: same verdict, skip
        await add_names(store, G1, NAMES[12:17])  # min_new_names more
        assert [j.guild_id for j in await service.scheduler.run_once()] == [G1]


async def test_the_periodic_scheduler_runs_by_itself(store, registry) -> None:
    await add_names(store, G1)
    every_50ms = replace(FAST, schedule_minutes=0.05 / 60)
    async with await running(store, registry, every_50ms):
        await until(lambda: registry.cached_guilds() == [G1])
    (version,) = await store.versions.list(G1)
    assert version.trigger == "schedule" and version.requested_by is None


# ----------------------------------------------------------------------------- bounded fine-tunes


def test_replay_never_asks_for_more_than_one_sampling_call_can_draw(registry) -> None:
    """Issue 8: without a base corpus, ~2,800 names asked for 4 × their count of replayed
    samples, past the model's 10,000 cap, and every fine-tune of the server failed."""
    base = registry.base.model
    train = tuple("".join(chr(97 + int(digit)) for digit in f"{i:04d}") + "saurus" for i in range(2_800))
    plan = TrainingPlan(G1, registry.base, base, train, (), (), None, 0, replay_seed=1)
    pool = replay_pool(plan, 2.0)
    assert 0 < len(pool) <= MAX_SAMPLES


def test_the_model_librarys_fine_tune_bounds_its_own_replay_too() -> None:
    names = [f"{a}{b}{c}saur" for a in "abcdefghijklmn" for b in "abcdefghijklmn" for c in "abcdefghijklmn"]
    assert len(names) > 2_600
    fit = fine_tune(tiny_model(), names, names[:20], train_config=TrainConfig(epochs=1, batch_size=512))
    assert fit.epochs_run == 1 and not fit.cancelled  # no "can sample 1–10000 names at once"


class PlanSpy(TrainingService):
    """Records what each fine-tune trained on (promoted or not: the promotion rule may discard it)."""

    used: list[set[str]]

    def _train(self, plan, progress, should_stop):
        self.used.append(set(plan.all_names))
        return super()._train(plan, progress, should_stop)


async def test_a_fine_tune_uses_a_bounded_mix_of_new_and_random_names(store, registry) -> None:
    many = [f"{a}{b}osaurus" for a in "abcdefgh" for b in "abcdefgh"]  # 64 names
    await add_names(store, G1, many)
    capped = replace(FAST, max_names=20, recent_share=0.5)
    service = PlanSpy(store, registry, capped)
    service.used = []
    await service.start()
    async with service:
        first = await (await service.request(G1, ADMIN)).wait()
        assert first.names_used == 20 and first.new_names == 20
        (used,) = service.used
        assert len(used) == 20 and set(many[-10:]) <= used  # the ten newest, ten at random
        if first.promoted:  # what the first one used is no longer new: the next takes the newest others
            await (await service.request(G1, ADMIN)).wait()
            newest_untrained = [n for n in many if n not in used][-10:]
            assert len(service.used[1]) == 20 and set(newest_untrained) <= service.used[1]


async def test_a_store_training_sample_is_bounded_distinct_and_approved_only(store) -> None:
    many = [f"{a}{b}odon" for a in "abcdefgh" for b in "abcdefgh"]
    await add_names(store, G1, many)
    await store.names.set_status(G1, many[-1], "rejected", ADMIN)
    sample = await store.names.training_sample(G1, 30, 10)
    assert len(sample.names) == len(set(sample.names)) == 30 and sample.new == 30
    assert many[-1] not in sample.names and set(many[-11:-1]) <= set(sample.names)
    assert list(sample.names) == sorted(sample.names)
    everything = await store.names.training_sample(G1, 1000, 500)
    assert set(everything.names) == set(many[:-1])


async def test_a_time_budget_ends_a_fine_tune_that_would_run_for_hours(store, registry) -> None:
    await add_names(store, G1)
    budgeted = replace(SLOW, time_budget=0.3)  # 100,000 epochs, but 0.3 s of training in all
    async with await running(store, registry, budgeted) as service:
        job = await service.request(G1, ADMIN)
        outcome = await asyncio.wait_for(job.wait(), timeout=60)
    assert job.status is JobStatus.DONE and outcome.version == 1  # judged, not cancelled
    assert job.snapshot.progress is not None and job.snapshot.progress.epoch < 100_000


class BrokenService(TrainingService):
    """A fine-tune that always crashes, with internals in its exception text."""

    def _train(self, plan, progress, should_stop):
        raise RuntimeError("secret detail: /srv/dinobot/internal.py line 42")


async def test_a_failing_server_is_retried_with_backoff_and_told_why(store, registry, caplog) -> None:
    await add_names(store, G1)
    clock = [1_000_000.0]
    scheduled = replace(FAST, retry_minutes=10, max_retry_minutes=25)
    service = BrokenService(store, registry, scheduled, clock=lambda: clock[0])
    await service.start()
    async with service:
        (job,) = await service.scheduler.run_once()
        outcome = await job.wait()
        assert job.status is JobStatus.FAILED
        assert "secret" not in outcome.reason and "RuntimeError" not in outcome.reason
        error_id = outcome.error_id
        assert re.fullmatch(r"[0-9a-f]{8}", error_id)
        assert error_id in caplog.text and "secret detail" in caplog.text  # the operator's log has it
        assert service.scheduler.failure(G1).reason == outcome.reason
        expected = [(9.9, False), (0.2, True), (19.9, False), (0.2, True), (24.9, False), (0.2, True)]
        for advance, runs in expected:  # retries after 10, then 20, then 25 (the cap) minutes
            clock[0] += advance * 60
            jobs = await service.scheduler.run_once()
            assert bool(jobs) == runs, (advance, runs)
            for queued in jobs:
                await queued.wait()
        assert service.scheduler.failure(G1).count == 4


# ----------------------------------------------------------------------------- a cluster's jobs


async def test_a_job_whose_process_died_runs_again_once_its_lease_expires(store, registry) -> None:
    await add_names(store, G1)
    record, _ = await store.jobs.enqueue(G1, "admin", ADMIN)
    assert await store.jobs.claim(record.id, "killed-process", ttl=0.3)  # it died without renewing
    short_lease = replace(FAST, lease_seconds=5.0)
    async with await running(store, registry, short_lease) as service:
        assert service.queued_guilds() == [G1]
        job = service.job(G1)
        assert job.id == record.id and job.requested_by == ADMIN
        outcome = await asyncio.wait_for(job.wait(), 30)
    assert outcome.promoted and (await registry.get(G1)).version == 1
    (row,) = await store.jobs.history(G1)
    assert (row.state, row.attempts, row.holder) == (JobState.DONE, 2, service.holder)


async def test_two_processes_never_run_one_guilds_fine_tune_twice(store, registry) -> None:
    await add_names(store, G1)
    first = await running(store, registry, SLOW, holder="process-a")
    second = await running(store, ModelRegistry(store), SLOW, holder="process-b")
    try:
        a = await first.request(G1, ADMIN)
        await first_epoch(a)
        b = await second.request(G1, ADMIN)  # the same row: it waits for process a's lease
        assert b.id == a.id
        await asyncio.sleep(0.3)
        assert (a.status, b.status) == (JobStatus.RUNNING, JobStatus.QUEUED)
        assert await first.cancel(G1, ADMIN)
        assert (await b.wait()).reason == "cancelled by an admin"  # as the database recorded it
        assert b.status is JobStatus.CANCELLED
    finally:
        await first.close()
        await second.close()
    (row,) = await store.jobs.history(G1)
    assert (row.state, row.holder, row.attempts) == (JobState.CANCELLED, "process-a", 1)


async def test_a_process_schedules_and_resumes_only_the_guilds_it_owns(store, registry) -> None:
    await add_names(store, G1)
    await add_names(store, G2)
    leftover, _ = await store.jobs.enqueue(G3, "admin", ADMIN)
    only_g2 = await running(store, registry, owns=lambda guild: guild == G2)
    try:
        assert only_g2.queued_guilds() == []  # G3's job is not ours to resume
        (job,) = await only_g2.scheduler.run_once()
        assert job.guild_id == G2 and (await job.wait()).promoted
    finally:
        await only_g2.close()
    assert await store.versions.list(G1) == [] and [j.id for j in await store.jobs.active()] == [leftover.id]



async def test_the_server_s_strength_sets_the_recipe_and_the_tolerance(store, registry) -> None:
    """No operator tolerance: the promotion rule uses the strength's own, and the fine-tune its recipe."""
    await add_names(store, G1)
    await store.settings.update(G1, ADMIN, strength="subtle")
    recipe_driven = replace(FAST, train_config=None, replay_ratio=None)
    async with await running(store, registry, recipe_driven) as service:
        outcome = await (await service.request(G1, ADMIN)).wait()
    assert "at most 0.03 worse allowed" in outcome.reason, outcome.reason
    (version,) = await store.versions.list(G1)
    assert version.reason == outcome.reason
