"""The model registry against real SQLite files and real checkpoints on disk.

Promoted versions are made here without training: a copy of the shipped model saved under the
registry's path with a ``tag`` in its metadata, then recorded as promoted in the store, so
each test can tell exactly which file is being served.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from bot.services.registry import ModelRegistry, ServedModel
from bot.services.store import Store
from model import BASE_CHECKPOINT, load_checkpoint, save_checkpoint

G1, G2, G3 = 111, 222, 333


@pytest.fixture
async def store(tmp_path: Path):
    async with await Store.open(tmp_path / "dinobot.sqlite3", daily_limit=None) as s:
        yield s


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


async def started(store: Store, models_dir: Path, **kwargs) -> ModelRegistry:
    registry = ModelRegistry(store, models_dir, **kwargs)
    await registry.start()
    return registry


async def add_version(store: Store, models_dir: Path, guild: int, *, status: str = "promoted",
                      write: bool = True) -> int:
    """Record the guild's next version; for a promoted one, save a tagged copy of the base."""
    version = await store.versions.next_number(guild)
    relative = f"{guild}/v{version}.npz"
    if write and status == "promoted":
        save_checkpoint(load_checkpoint(BASE_CHECKPOINT), models_dir / relative,
                        tag=f"{guild}-v{version}")
    now = time.time()
    await store.versions.record(
        guild, trigger="admin", status=status, started_at=now, finished_at=now,
        checkpoint_path=relative if status == "promoted" else None, version=version,
        names_used=10 * version, val_loss_after=1.5 + version / 100,
        reason="test" if status == "promoted" else "discarded: test",
    )
    return version


def tag(served) -> str | None:
    return served.model.metadata.get("tag")


async def test_every_guild_gets_the_shared_base_until_it_has_a_version(store, models_dir) -> None:
    registry = ModelRegistry(store, models_dir)
    with pytest.raises(RuntimeError, match="start"):
        await registry.get(G1)
    await registry.start()
    one, two = await registry.get(G1), await registry.get(G2)
    assert one is two is registry.base
    assert one.is_base and one.version is None and one.names_count == 0
    assert one.val_loss == registry.base.model.metadata["val_loss"]
    assert registry.cached_guilds() == []  # the base is not counted among cached models


async def test_newest_promoted_version_is_served_after_a_restart(store, models_dir) -> None:
    await add_version(store, models_dir, G1)
    await add_version(store, models_dir, G1)
    await add_version(store, models_dir, G1, status="discarded")  # v3: never served
    served = await (await started(store, models_dir)).get(G1)
    assert (served.version, tag(served)) == (2, f"{G1}-v2")
    assert served.names_count == 20 and served.val_loss == pytest.approx(1.52)
    assert served.checkpoint == models_dir / f"{G1}/v2.npz" and served.trained_at is not None
    assert (await started(store, models_dir)).base is not served  # a fresh registry reloads


async def test_corrupt_or_missing_newest_falls_back_to_the_previous_good_one(
        store, models_dir, caplog) -> None:
    for _ in range(3):
        await add_version(store, models_dir, G1)
    await add_version(store, models_dir, G2)
    (models_dir / f"{G1}/v3.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (models_dir / f"{G1}/v2.npz").unlink()
    caplog.set_level(logging.ERROR, logger="bot.registry")
    registry = await started(store, models_dir)
    served = await registry.get(G1)
    assert (served.version, tag(served)) == (1, f"{G1}-v1")
    logged = caplog.text
    assert "version 3 cannot be served" in logged and "corrupt" in logged
    assert "version 2 cannot be served" in logged and "not found" in logged
    assert (await registry.get(G2)).version == 1  # G1's broken files change nothing for G2

    (models_dir / f"{G1}/v1.npz").unlink()
    assert (await (await started(store, models_dir)).get(G1)).is_base


async def test_lru_keeps_a_bounded_number_of_fine_tuned_models(store, models_dir) -> None:
    for guild in (G1, G2, G3):
        await add_version(store, models_dir, guild)
    registry = await started(store, models_dir, max_cached=2)
    first = await registry.get(G1)
    await registry.get(G2)
    await registry.get(G1)  # G1 is now the most recently used
    await registry.get(G3)  # evicts G2, the least recently used
    assert registry.cached_guilds() == [G1, G3]
    assert await registry.get(G1) is first  # still the same object: not reloaded
    again = await registry.get(G2)  # reloaded from disk, evicting G3 (G1 was just used)
    assert (again.version, tag(again)) == (1, f"{G2}-v1")
    assert registry.cached_guilds() == [G1, G2]
    assert (await registry.get(4444)).is_base and registry.cached_guilds() == [G1, G2]


async def test_swap_in_is_atomic_for_requests_in_flight(store, models_dir) -> None:
    await add_version(store, models_dir, G1)
    registry = await started(store, models_dir)
    held = await registry.get(G1)
    await add_version(store, models_dir, G1)  # what the training service commits, then swaps
    model = load_checkpoint(models_dir / f"{G1}/v2.npz")
    registry.swap_in(G1, ServedModel(model, 2, 1.4, time.time(), 20, models_dir / f"{G1}/v2.npz"))
    assert held.version == 1 and tag(held) == f"{G1}-v1"  # the holder's object is untouched
    assert (await registry.get(G1)).model is model
    assert (await registry.get(G2)).is_base


async def test_concurrent_first_requests_load_the_checkpoint_once(store, models_dir) -> None:
    await add_version(store, models_dir, G1)
    registry = await started(store, models_dir)
    results = await asyncio.gather(*(registry.get(G1) for _ in range(8)))
    assert all(r is results[0] for r in results) and results[0].version == 1


async def test_start_up_removes_temp_files_and_uncommitted_checkpoints(store, models_dir) -> None:
    await add_version(store, models_dir, G1)
    guild_dir = models_dir / str(G1)
    (guild_dir / ".v2.npz.k3j4.tmp").write_bytes(b"half a checkpoint")
    orphan = guild_dir / "v2.npz"  # written, then the process died before the commit
    save_checkpoint(load_checkpoint(BASE_CHECKPOINT), orphan)
    (guild_dir / "notes.txt").write_text("not ours to remove")
    registry = await started(store, models_dir)
    assert sorted(p.name for p in guild_dir.iterdir()) == ["notes.txt", "v1.npz"]
    assert (await registry.get(G1)).version == 1
