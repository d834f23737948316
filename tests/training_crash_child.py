"""The process tests/test_training_crash.py kills: a fine-tune plus a stream of submissions.

usage: python tests/training_crash_child.py DB MODELS_DIR GUILD MODE

MODE says where the process dies:

``train``
    a fine-tune that would run for hours; the parent SIGKILLs this process once an epoch has
    been reported.
``write``
    a tiny fine-tune that is promoted; the process SIGKILLs itself inside ``save_checkpoint``,
    when the temp file is fully written and about to be fsynced (``os.fsync`` is wrapped), so
    the temp file exists and the final file does not.
``commit``
    the same, but it dies in ``TrainingService._commit``: the checkpoint is in place and the
    database row is not committed.

Meanwhile a task submits names to the guild and prints ``N <id> <name>`` only after each
``submit`` returned (acknowledged). ``P <epoch>`` reports training progress.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

# Run as a script, Python puts this folder first on sys.path, where the tests/model/ package
# would shadow the model library: put the checkout there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from bot.registry import ModelRegistry  # noqa: E402
from bot.store import Store  # noqa: E402
from bot.training import TrainingService  # noqa: E402
from bot.training_settings import TrainingSettings  # noqa: E402
from model import TrainConfig  # noqa: E402
from tests.name_factory import letters  # noqa: E402

FAST = TrainingSettings(min_names=5, min_new_names=5, schedule_minutes=0, base_val_samples=30,
                        tolerance=10.0, train_config=TrainConfig(epochs=2, lr=2e-3, patience=2))
SLOW = replace(FAST, train_config=TrainConfig(epochs=100_000, lr=2e-3, patience=100_000))


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class DiesBeforeCommit(TrainingService):
    async def _commit(self, guild_id, path, **record):
        print("C", path.name, flush=True)
        die()


def die_when_a_temp_file_is_fsynced() -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            print("W", flush=True)
            die()
        real_fsync(fd)

    os.fsync = fsync


async def submit_forever(store: Store, guild: int) -> None:
    for i in itertools.count():
        sub = await store.submit(guild, 9000 + i % 50, "crash" + letters(i))
        print("N", sub.id, sub.name, flush=True)


async def main(db: str, models_dir: str, guild: int, mode: str) -> None:
    store = await Store.open(db, daily_limit=None)
    registry = ModelRegistry(store, Path(models_dir))
    await registry.start()
    cls = DiesBeforeCommit if mode == "commit" else TrainingService
    service = cls(store, registry, SLOW if mode == "train" else FAST)
    await service.start()
    if mode == "write":
        die_when_a_temp_file_is_fsynced()
    job = await service.request(guild, 1)
    job.add_listener(lambda s: s.epoch and print("P", s.epoch, flush=True))
    submitter = asyncio.create_task(submit_forever(store, guild))
    outcome = await job.wait()
    submitter.cancel()
    print("END", outcome, flush=True)  # the parent treats reaching this as a failure


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
