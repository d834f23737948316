"""The process tests/services/test_training_crash.py kills: a fine-tune plus a stream of submissions.

usage: python tests/support/training_crash_child.py DATABASE GUILD MODE

DATABASE is an SQLite path or a ``postgresql://`` URL. MODE says where the process dies:

``train``
    a fine-tune that would run for hours; the parent SIGKILLs this process once an epoch has
    been reported.
``commit``
    a tiny fine-tune that is promoted; the process SIGKILLs itself *inside* the promotion's
    transaction, when the version row and the checkpoint's bytes have been written and the
    trained names are about to be marked, so nothing of it is committed.

Meanwhile a task submits names to the guild and prints ``N <id> <name>`` only after each
``submit`` returned (acknowledged). ``P <epoch>`` reports training progress, ``J <id>`` the job.
Job leases last 2 s, so the parent's next fine-tune need not wait long for a dead child's.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import bot.services.store.versions as versions_module
from bot.services.registry import ModelRegistry
from bot.services.store import Store
from bot.services.training.service import TrainingService
from bot.services.training.settings import TrainingSettings
from model import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.child_output import say  # noqa: E402
from tests.support.name_factory import letters  # noqa: E402

FAST = TrainingSettings(min_names=5, min_new_names=5, schedule_minutes=0, base_val_samples=30,
                        tolerance=10.0, lease_seconds=2.0,
                        train_config=TrainConfig(epochs=2, lr=2e-3, patience=2))
SLOW = replace(FAST, train_config=TrainConfig(epochs=100_000, lr=2e-3, patience=100_000))


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_inside_the_promotion() -> None:
    async def mark_trained(tx, guild_id, names, version):
        say("C", version)
        die()

    versions_module._mark_trained = mark_trained


async def submit_forever(store: Store, guild: int) -> None:
    for i in itertools.count():
        sub = await store.names.submit(guild, 9000 + i % 50, "crash" + letters(i))
        say("N", sub.id, sub.name)


async def main(database: str, guild: int, mode: str) -> None:
    store = await Store.open(database, daily_limit=None)
    registry = ModelRegistry(store)
    await registry.start()
    service = TrainingService(store, registry, SLOW if mode == "train" else FAST)
    await service.start()
    if mode == "commit":
        die_inside_the_promotion()
    job = service.job(guild) or await service.request(guild, 1)
    say("J", job.id)
    job.add_listener(lambda s: s.progress and say("P", s.progress.epoch))
    submitter = asyncio.create_task(submit_forever(store, guild))
    outcome = await job.wait()
    submitter.cancel()
    say("END", outcome)  # the parent treats reaching this as a failure


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
