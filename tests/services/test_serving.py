"""Serving an earlier version (``/models use``): the registry's checks, the stored choice, restarts.

On both backends; checkpoints live in the database, and damage is done to them from outside."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import NotFound, VersionNotServable
from bot.services.store import Store
from tests.services.test_registry import G1, G2, add_version, started, tag, tamper
from tests.support.stores import RawDB

ADMIN = 9001


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


async def test_use_serves_an_earlier_version_audited_and_after_a_restart(store: Store, models_dir: Path) -> None:
    for _ in range(3):
        await add_version(store, models_dir, G1)
    registry = await started(store, models_dir)
    assert (await registry.get(G1)).version == 3
    served = await registry.use(G1, 1, ADMIN)
    assert served.version == 1 and tag(served) == f"{G1}-v1"
    assert (await registry.get(G1)).version == 1
    (entry,) = [e for e in await store.audit.recent(G1) if e.action == "model.use"]
    assert (entry.actor_id, entry.details) == (ADMIN, {"version": 1, "was_serving": 3, "newest": 3})
    restarted = await started(store, models_dir)
    assert (await restarted.get(G1)).version == 1  # the choice is stored, not just in memory
    assert (await restarted.get(G2)).is_base  # other servers are untouched


async def test_the_base_model_can_be_chosen_too(store: Store, models_dir: Path) -> None:
    await add_version(store, models_dir, G1)
    registry = await started(store, models_dir)
    assert (await registry.use(G1, None, ADMIN)).is_base
    assert (await registry.get(G1)).is_base
    assert (await (await started(store, models_dir)).get(G1)).is_base


async def test_a_newer_promotion_takes_over_from_the_choice(store: Store, models_dir: Path) -> None:
    await add_version(store, models_dir, G1)
    await add_version(store, models_dir, G1)
    registry = await started(store, models_dir)
    await registry.use(G1, 1, ADMIN)
    await add_version(store, models_dir, G1, status="discarded")  # v3: does not end the choice
    assert (await (await started(store, models_dir)).get(G1)).version == 1
    await add_version(store, models_dir, G1)  # v4, promoted (a fine-tune from v1)
    assert await store.serving.get(G1) is None
    assert (await (await started(store, models_dir)).get(G1)).version == 4


async def test_missing_discarded_and_broken_versions_are_refused(store: Store, models_dir: Path, raw: RawDB) -> None:
    await add_version(store, models_dir, G1)
    await add_version(store, models_dir, G1, status="discarded")
    await add_version(store, models_dir, G1)
    registry = await started(store, models_dir)
    with pytest.raises(NotFound, match="Model version 9 was not found"):
        await registry.use(G1, 9, ADMIN)
    refused = r"Version 2 cannot serve this server: it was discarded when it was made\. Test\."
    with pytest.raises(VersionNotServable, match=refused):
        await registry.use(G1, 2, ADMIN)
    await tamper(raw, G1, 1, b"not a checkpoint")
    with pytest.raises(VersionNotServable, match="checkpoint is missing or damaged"):
        await registry.use(G1, 1, ADMIN)
    assert (await registry.get(G1)).version == 3 and await store.serving.get(G1) is None
    assert [e for e in await store.audit.recent(G1) if e.action == "model.use"] == []


async def test_a_chosen_version_whose_checkpoint_broke_falls_back_below_it(store: Store, models_dir: Path,
                                                                          raw: RawDB) -> None:
    for _ in range(3):
        await add_version(store, models_dir, G1)
    await (await started(store, models_dir)).use(G1, 2, ADMIN)
    await tamper(raw, G1, 2, b"PK\x03\x04 torn")
    served = await (await started(store, models_dir)).get(G1)
    assert served.version == 1  # never the newer v3: the moderator chose to go back
