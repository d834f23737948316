"""The generation service without Discord: batching, the reservoir, avoid-sets, errors."""
from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from bot.services import generation
from bot.services.generation import POOL_REFILL, BadOption, NameGenerator
from bot.services.registry import ModelRegistry, ServedModel
from bot.services.store import Store
from model import InvalidName, NameModel


@pytest.fixture
async def services(tmp_path):
    store = await Store.open(tmp_path / "db.sqlite3")
    registry = ModelRegistry(store, tmp_path / "models")
    await registry.start()
    generator = NameGenerator(store, registry, frozenset({"tyrannosaurus"}))
    yield store, registry, generator
    await generator.close()
    await store.close()


async def test_concurrent_requests_get_distinct_names_honouring_their_options(services):
    _, _, generator = services
    results = await asyncio.gather(*(generator.generate(1, "tyr", 5, 0.8) for _ in range(30)),
                                   *(generator.generate(2, "", 3, 1.5) for _ in range(10)))
    for result in results[:30]:
        names = [n.name for n in result.names]
        assert len(set(names)) == 5 and all(n.startswith("tyr") for n in names)
    assert all(len(r.names) == 3 and not r.prefix for r in results[30:])


async def test_plain_requests_are_served_from_a_reservoir_that_refills(services):
    _, registry, generator = services
    generator.prime(registry.base.model)
    await generator.generate(1, "", 1)  # waits behind nothing; the pool fills in the background
    for _ in range(200):
        await asyncio.sleep(0.01)
        pool = generator._pools[id(registry.base.model)][1]
        if len(pool) >= POOL_REFILL:
            break
    before = len(pool)
    result = await generator.generate(1, "", 10)
    assert len(result.names) == 10 and len(pool) <= before - 10
    assert len({s.name for s in pool}) == len(pool)  # pooled names are distinct


async def test_a_promoted_model_starts_filling_its_reservoir_at_once(services):
    """Otherwise the first plain requests after every promotion are all sampled while members wait."""
    _, registry, generator = services
    promoted = NameModel([member.copy() for member in registry.base.model.members])
    registry.swap_in(7, ServedModel(promoted, 1, None, 0.0, 20, Path("7/v1.npz")))

    async def filled() -> None:
        while len(generator._pools.get(id(promoted), (None, ()))[1]) < POOL_REFILL:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(filled(), timeout=30)  # no request was made


async def test_a_replaced_models_reservoir_goes_with_it(services):
    """A reservoir holds its model weakly: after a promotion the old version and its pooled names are
    freed once nothing else holds them, instead of living on until the reservoir falls out of the LRU."""
    _, registry, generator = services
    first = NameModel([member.copy() for member in registry.base.model.members])
    registry.swap_in(7, ServedModel(first, 1, None, 0.0, 20, Path("7/v1.npz")))
    await generator.generate(7, "", 1)
    old = weakref.ref(first)
    key = id(first)
    assert key in generator._pools
    del first
    second = NameModel([member.copy() for member in registry.base.model.members])
    registry.swap_in(7, ServedModel(second, 2, None, 0.0, 20, Path("7/v2.npz")))
    await generator.generate(7, "", 1)  # waits for the sampling thread, which may hold the old one
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0)
    await generator.generate(7, "", 1)
    assert old() is None
    assert key not in generator._pools or generator._pools[key][0]() is not None
    assert id(second) in generator._pools


async def test_names_a_server_has_are_never_generated_there(services):
    store, _, generator = services
    first = await generator.generate(7, "zu", 10, 0.3)
    for user, item in enumerate(first.names):
        await store.names.submit(7, user, item.name)
    again = await generator.generate(7, "zu", 10, 0.3)
    assert not {n.name for n in again.names} & {n.name for n in first.names}
    other = await generator.generate(8, "zu", 10, 0.3)  # another server may get them
    assert other.names


async def test_one_servers_names_never_change_another_servers_answers_in_a_shared_batch(services, monkeypatch):
    """Issue 8: B got "Tyrannosaurus" 5 of 5 times before A submitted it and 0 of 5 after,
    because a batch merged every request's avoid-set."""
    store, _, generator = services
    groups: list[int] = []
    real = generation._sample_group
    monkeypatch.setattr(generation, "_sample_group", lambda group: groups.append(len(group)) or real(group))

    async def b_answers() -> list[str]:
        await generator.generate(1, "", 1), await generator.generate(2, "", 1)  # both servers cached
        answers = []
        for _ in range(5):
            _, b = await asyncio.gather(generator.generate(1, "tyrannosauru", 1, 0.3),
                                        generator.generate(2, "tyrannosauru", 1, 0.3))
            answers.append(b.names[0].name)
        return answers

    assert await b_answers() == ["tyrannosaurus"] * 5
    await store.names.submit(1, 42, "tyrannosaurus")
    groups.clear()
    assert await b_answers() == ["tyrannosaurus"] * 5
    assert groups == [2] * 5  # each time, A's and B's requests shared one batch
    a = await generator.generate(1, "tyrannosauru", 1, 0.3)
    assert "tyrannosaurus" not in {n.name for n in a.names}  # A never gets its own name back


async def test_known_dinosaurs_are_labelled(services):
    _, _, generator = services
    result = await generator.generate(1, "tyrannosauru", 1, 0.3)
    assert result.names[0].name == "tyrannosaurus" and result.names[0].known


@pytest.mark.parametrize("kwargs, error", [
    ({"prefix": "t1"}, InvalidName), ({"count": 0}, BadOption), ({"count": 11}, BadOption),
    ({"temperature": 0.1}, BadOption), ({"temperature": 5.0}, BadOption),
])
async def test_bad_options_raise_friendly_errors(services, kwargs, error):
    _, _, generator = services
    with pytest.raises(error):
        await generator.generate(1, **{"prefix": "", "count": 1, "temperature": 1.0, **kwargs})


async def test_names_cut_at_the_length_cap_are_marked(services):
    _, _, generator = services
    result = await generator.generate(None, "x" * 31, 10)
    assert all(n.name.startswith("x" * 31) for n in result.names)
    assert all(n.complete == (len(n.name) < 32) for n in result.names)
