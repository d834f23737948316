"""The model registry on both backends, with real checkpoints stored in the database.

Promoted versions are made here without training: a copy of the shipped model with a ``tag`` in
its metadata, recorded as promoted together with its bytes, so each test can tell exactly which
checkpoint is being served. Damage is done to the stored bytes with the plain driver.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from bot.services.registry import ModelRegistry, ServedModel
from bot.services.store import Store
from model import BASE_CHECKPOINT, checkpoint_bytes, load_checkpoint, save_checkpoint
from tests.support.stores import RawDB

G1, G2, G3 = 111, 222, 333


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """Where an older DinoBot kept checkpoint files (only the legacy tests put any there)."""
    return tmp_path / "models"


async def started(store: Store, models_dir: Path, **kwargs) -> ModelRegistry:
    registry = ModelRegistry(store, models_dir, **kwargs)
    await registry.start()
    return registry


def tagged(guild: int, version: int) -> bytes:
    return checkpoint_bytes(load_checkpoint(BASE_CHECKPOINT), tag=f"{guild}-v{version}")


async def add_version(store: Store, models_dir: Path, guild: int, *, status: str = "promoted") -> int:
    """Record the guild's next version; a promoted one with a tagged copy of the base."""
    version = await store.versions.next_number(guild)
    now = time.time()
    await store.versions.record(
        guild, trigger="admin", status=status, started_at=now, finished_at=now, version=version,
        checkpoint=tagged(guild, version) if status == "promoted" else None,
        names_used=10 * version, val_loss_after=1.5 + version / 100,
        reason="test" if status == "promoted" else "discarded: test",
    )
    return version


async def tamper(raw: RawDB, guild: int, version: int, data: bytes) -> None:
    """Damage stored bytes from outside the store (the store itself never rewrites them)."""
    (count,) = (await raw.rows("UPDATE model_checkpoints SET data = ? WHERE guild_id = ? AND version = ?"
                               " RETURNING 1", (data, guild, version)))
    assert count == (1,)


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
    assert served.source == f"database: guild {G1} v2" and served.trained_at is not None
    assert (await started(store, models_dir)).base is not served  # a fresh registry reloads


async def test_corrupt_or_missing_newest_falls_back_to_the_previous_good_one(
        store, models_dir, raw, caplog) -> None:
    for _ in range(4):
        await add_version(store, models_dir, G1)
    await add_version(store, models_dir, G2)
    await tamper(raw, G1, 4, tagged(G1, 99))  # a valid checkpoint, but not the one recorded
    await tamper(raw, G1, 3, b"PK\x03\x04 not really a zip")
    await store.versions.record(G1, trigger="admin", status="promoted", started_at=0, finished_at=0,
                                version=5, checkpoint_path=f"{G1}/v5.npz")  # an old row, no file
    caplog.set_level(logging.ERROR, logger="bot.services.registry")
    registry = await started(store, models_dir)
    served = await registry.get(G1)
    assert (served.version, tag(served)) == (2, f"{G1}-v2")
    logged = caplog.text
    assert "version 5 is promoted but its checkpoint is not in the database" in logged
    assert "version 4 cannot be served" in logged and "SHA-256" in logged
    assert "version 3 cannot be served" in logged and "corrupt" in logged
    assert (await registry.get(G2)).version == 1  # G1's broken checkpoints change nothing for G2
    (count,) = await raw.rows("SELECT count(*) FROM model_checkpoints")
    assert count == (5,)  # nothing was removed, only skipped


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
    model = load_checkpoint(BASE_CHECKPOINT)
    registry.swap_in(G1, ServedModel(model, 2, 1.4, time.time(), 20, registry.source_of(G1, 2)))
    assert held.version == 1 and tag(held) == f"{G1}-v1"  # the holder's object is untouched
    assert (await registry.get(G1)).model is model
    assert (await registry.get(G2)).is_base


async def test_concurrent_first_requests_load_the_checkpoint_once(store, models_dir) -> None:
    await add_version(store, models_dir, G1)
    registry = await started(store, models_dir)
    results = await asyncio.gather(*(registry.get(G1) for _ in range(8)))
    assert all(r is results[0] for r in results) and results[0].version == 1


async def test_start_up_moves_an_older_dinobots_checkpoint_files_into_the_database(
        store, models_dir, caplog) -> None:
    common = dict(trigger="admin", status="promoted", started_at=0.0, finished_at=1.0)
    for version in (1, 2, 3):  # as DinoBot recorded them before checkpoints lived in the database
        await store.versions.record(G1, version=version, checkpoint_path=f"{G1}/v{version}.npz", **common)
    save_checkpoint(load_checkpoint(BASE_CHECKPOINT), models_dir / f"{G1}/v1.npz", tag="file-v1")
    save_checkpoint(load_checkpoint(BASE_CHECKPOINT), models_dir / f"{G1}/v2.npz", tag="file-v2")
    (models_dir / f"{G1}/v3.npz").write_bytes(b"torn")
    caplog.set_level(logging.ERROR, logger="bot.services.registry")
    registry = await started(store, models_dir)
    assert "version 3: its checkpoint file cannot be moved" in caplog.text
    assert tag(await registry.get(G1)) == "file-v2"
    assert [v.version for v in await store.versions.without_checkpoint()] == [3]
    assert sorted(p.name for p in (models_dir / str(G1)).iterdir()) == ["v1.npz", "v2.npz", "v3.npz"]  # kept
    for path in (models_dir / str(G1)).iterdir():
        path.unlink()  # from now on the files are not needed
    assert tag(await (await started(store, models_dir)).get(G1)) == "file-v2"
