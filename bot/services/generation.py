"""Inventing names for a server: the service behind ``/dinoname`` (no Discord in here).

It picks the server's model from the registry, never repeats a name the server already has
(whatever its status) and labels names that happen to be real dinosaurs when a base corpus is
configured.

Requests are batched: while one batch is being sampled (in a dedicated thread, so the event
loop keeps answering), new requests queue up, and the next batch samples every queued request
that uses the same model in one call, whatever their prefixes and temperatures — the model
advances all their names together, while each request keeps its own rows, prefix, temperature
and its own server's exclusions (so one server never changes what another sees). An idle
generator starts a request at once, so batching never adds latency; under a burst of 200
requests it turns 200 sampling calls into a handful.

The plain request (no prefix, temperature 1) is by far the most common, so for it the generator
keeps a reservoir of names drawn ahead of time, per model, refilled in the sampling thread when
it runs low. Each pooled name is handed out once; a promoted fine-tune gets a fresh pool (pools
are keyed by the model object), which starts filling the moment it is swapped in. A burst of
plain requests is then answered without sampling.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections import OrderedDict, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import AbstractSet, Callable

from bot.errors import DinoBotError
from bot.services.records import ModelInfo
from bot.services.registry import ModelRegistry, ServedModel
from bot.services.store import Store
from model import (
    MAX_NAME_LEN,
    InvalidName,
    NameModel,
    NameRequest,
    Sample,
    normalize_prefix,
    sample_many,
    sample_names,
    score_name,
)

log = logging.getLogger(__name__)

MAX_COUNT = 10
TEMPERATURE_RANGE = (0.3, 2.0)
MAX_BATCH_NAMES = 2000  # one sampling call; a larger queue is split into several
POOL_SIZE = 4096  # pre-drawn plain names kept per model (two bursts of 200 × 5)
POOL_REFILL = 256  # names drawn per refill call: short, so real requests never wait long
MAX_POOLS = 8  # models with a reservoir (least recently used are dropped)
QUIET_BEFORE_REFILL = 0.1  # s without requests before topping up a pool that is not low


class BadOption(DinoBotError, ValueError):
    """An option outside its range. Discord enforces the command's ranges, but a More button
    made by an older version (its options live in its custom id) can still carry one."""


@dataclass(frozen=True)
class Invented:
    name: str
    known: bool  # a real dinosaur from the base corpus
    complete: bool  # False: cut at the length cap


@dataclass(frozen=True)
class Generated:
    names: list[Invented]
    served: ServedModel
    prefix: str
    asked: int

    @property
    def short(self) -> bool:
        """Fewer names than asked: the prefix leaves little room for new names."""
        return len(self.names) < self.asked


@dataclass
class _Request:
    served: ServedModel
    prefix: str
    temperature: float
    count: int
    avoid: AbstractSet[str]  # the server's live, shared name set: only ever asked `in`
    future: asyncio.Future = field(repr=False)

    @property
    def key(self) -> int:
        """Requests for the same model share a sampling call, whatever their options."""
        return id(self.served.model)


class NameGenerator:
    def __init__(self, store: Store, registry: ModelRegistry, known_names: frozenset[str] = frozenset(),
                 activity: Callable[[], float] | None = None):
        """``activity``: when the bot last saw any interaction (``time.monotonic()``), so pool
        refills also wait out bursts of other commands."""
        self._activity = activity
        self._store = store
        self._registry = registry
        self.known_names = known_names
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dinobot-sample")
        self._queue: list[_Request] = []
        self._draining = False
        # Keyed by id(model) and holding the model weakly: a reservoir must not keep a replaced or
        # evicted model (a few MB each) alive after the registry has let go of it.
        self._pools: OrderedDict[int, tuple[weakref.ref[NameModel], deque[Sample]]] = OrderedDict()
        self._last_request = 0.0
        self._drainer: asyncio.Task | None = None
        self._closed = False
        # A promoted fine-tune starts drawing its reservoir at once, so the first plain requests
        # after a promotion do not all have to be sampled while the members wait.
        registry.on_swap(lambda guild_id, served: self.prime(served.model))

    async def generate(self, guild_id: int | None, prefix: str | None = "", count: int = 1,
                       temperature: float = 1.0) -> Generated:
        """Up to ``count`` new names for this server (the base model in DMs, ``guild_id=None``).

        Raises ``InvalidName`` for a bad prefix and :class:`BadOption` for out-of-range
        options, both with messages meant for the member.
        """
        self._last_request = time.monotonic()
        prefix = normalize_prefix(prefix)
        if len(prefix) >= MAX_NAME_LEN:  # checked here: in a shared batch it would fail every request
            raise InvalidName(f"The prefix '{prefix}' leaves no room for a name of at most {MAX_NAME_LEN} letters.")
        if not 1 <= count <= MAX_COUNT:
            raise BadOption(f"The count must be between 1 and {MAX_COUNT}, not {count}.")
        low, high = TEMPERATURE_RANGE
        if not low <= temperature <= high:
            raise BadOption(f"The temperature must be between {low} and {high}, not {temperature:g}.")
        if guild_id is None:
            served, taken = self._registry.base, frozenset()
        else:
            served = await self._registry.get(guild_id)
            taken = await self._store.names.submitted(guild_id)
        samples = self._from_pool(served.model, count, taken) if not prefix and temperature == 1.0 else None
        if samples is None:
            future = asyncio.get_running_loop().create_future()
            self._queue.append(_Request(served, prefix, temperature, count, taken, future))
            self._start_draining()
            samples = await future
        else:
            self._start_draining()  # tops the reservoir up in the background
        names = [Invented(s.name, s.name in self.known_names, s.complete) for s in samples]
        return Generated(names, served, prefix, count)

    async def score(self, guild_id: int | None, name: str) -> float:
        """How dinosaur-like the server's model finds ``name``: mean NLL per letter, lower is
        likelier. Runs in the sampling thread, so a long name never stalls the event loop."""
        served = await self._served(guild_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, score_name, served.model, name)

    async def describe(self, guild_id: int | None) -> ModelInfo:
        """What ``/dinoinfo`` shows: the model serving this server (the base in DMs)."""
        return (await self._served(guild_id)).describe()

    async def _served(self, guild_id: int | None) -> ServedModel:
        return self._registry.base if guild_id is None else await self._registry.get(guild_id)

    def prime(self, model: NameModel) -> None:
        """Start filling ``model``'s reservoir now (at start-up, for the base model)."""
        self._pool(model)
        self._start_draining()

    def _pool(self, model: NameModel) -> deque[Sample]:
        """``model``'s reservoir (made empty on first use), marked most recently used."""
        self._forget_dead_pools()
        key = id(model)
        entry = self._pools.get(key)
        if entry is None or entry[0]() is not model:  # new, or an id reused after its model died
            self._pools[key] = (weakref.ref(model), deque())
            while len(self._pools) > MAX_POOLS:
                self._pools.popitem(last=False)
        self._pools.move_to_end(key)
        return self._pools[key][1]

    def _forget_dead_pools(self) -> None:
        """Drop the reservoirs of models nothing else holds (swapped out or evicted): done here, on
        the event loop, rather than in a weakref callback that could run in the sampling thread."""
        for key in [key for key, (ref, _) in self._pools.items() if ref() is None]:
            del self._pools[key]

    def _from_pool(self, model: NameModel, count: int, avoid: AbstractSet[str]) -> list[Sample] | None:
        """``count`` pre-drawn names not in ``avoid``, or None if the pool is short."""
        names = self._pool(model)
        taken: list[Sample] = []
        while names and len(taken) < count:
            sample = names.popleft()
            if sample.name not in avoid:
                taken.append(sample)
        if len(taken) < count:
            names.extendleft(reversed(taken))  # not enough: give them back, sample afresh
            return None
        return taken

    def _start_draining(self) -> None:
        if self._closed or self._draining or not (self._queue or self._pool_to_fill() is not None):
            return
        self._draining = True
        self._drainer = asyncio.create_task(self._drain(), name="dinobot-sampling")

    def _pool_to_fill(self) -> tuple[NameModel, deque] | None:
        self._forget_dead_pools()
        for ref, names in reversed(self._pools.values()):
            if len(names) < POOL_SIZE and (model := ref()) is not None:
                return model, names
        return None

    async def _drain(self) -> None:
        """Serve queued requests first; with none waiting, top up the reservoirs."""
        loop = asyncio.get_running_loop()
        try:
            while self._queue or (refill := self._pool_to_fill()) is not None:
                if not self._queue:
                    model, names = refill
                    if len(names) >= POOL_REFILL and await self._busy():
                        continue  # a burst is on: refilling now would slow its replies down
                    pooled = {sample.name for sample in names}
                    fresh = await loop.run_in_executor(self._executor, _draw_plain, model, pooled)
                    names.extend(fresh)  # only this task adds to pools, so still distinct
                    continue
                batch, self._queue = self._queue, []
                for group in _groups(batch):
                    try:
                        results = await loop.run_in_executor(self._executor, _sample_group, group)
                    except Exception as exc:  # every waiter hears about it; the next batch still runs
                        for request in group:
                            if not request.future.done():
                                request.future.set_exception(exc)
                        continue
                    for request, samples in zip(group, results, strict=True):
                        if not request.future.done():  # the interaction may have given up
                            request.future.set_result(samples)
        finally:
            self._draining = False

    async def _busy(self) -> bool:
        """Wait out a short quiet period; True if requests kept coming (check the queue again).

        The sampling thread holds the GIL between NumPy calls, so a refill during a burst makes
        every socket send on the event loop wait for it; a low pool is refilled regardless.
        """
        last = max(self._last_request, self._activity() if self._activity else 0.0)
        quiet_for = time.monotonic() - last
        if quiet_for >= QUIET_BEFORE_REFILL:
            return False
        await asyncio.sleep(QUIET_BEFORE_REFILL - quiet_for)
        return True

    async def close(self) -> None:
        """Stop sampling: waiting requests fail with a clear error, the thread is shut down."""
        self._closed = True
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        for request in self._queue:
            if not request.future.done():
                request.future.set_exception(DinoBotError("The bot is shutting down; try again in a moment."))
        self._queue.clear()
        await asyncio.to_thread(self._executor.shutdown, True)


def _groups(batch: list[_Request]) -> list[list[_Request]]:
    """Requests that can share one sampling call, at most MAX_BATCH_NAMES names each."""
    by_key: dict[int, list[list[_Request]]] = defaultdict(lambda: [[]])
    for request in batch:
        chunks = by_key[request.key]
        if sum(r.count for r in chunks[-1]) + request.count > MAX_BATCH_NAMES:
            chunks.append([])
        chunks[-1].append(request)
    return [chunk for chunks in by_key.values() for chunk in chunks]


def _draw_plain(model: NameModel, pooled: set[str]) -> list[Sample]:
    """A reservoir refill: plain names (no prefix, temperature 1) not already in the pool."""
    return sample_names(model, POOL_REFILL, avoid=pooled)


def _sample_group(group: list[_Request]) -> list[list[Sample]]:
    """One batched sampling call for the whole group (sampling thread), in request order.

    Every request filters its own rows by its own server's names only (``model.sample_many``),
    so what one server already has never changes what another sees, even inside a batch.
    """
    requests = [NameRequest(r.count, r.prefix, r.temperature, r.avoid) for r in group]
    return sample_many(group[0].served.model, requests)
