"""Names to suggest while a member types ``/dinoname prefix:``: Discord's autocomplete.

Discord sends an autocomplete request for nearly every keystroke and drops answers that take
longer than 3 s, so suggestions are cheap and bounded: they go through the generation service
(the server's model, batched with every other request, never a name the server already has),
are cached per (server, model version, prefix) for a few minutes, and a request that cannot be
answered within :data:`DEADLINE` seconds gets no suggestions rather than a late answer. Typed text
that is not a valid prefix gets none at all: suggestions never raise.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Callable

from bot.services.generation import NameGenerator
from bot.services.registry import ModelRegistry
from model import InvalidName, normalize_prefix

log = logging.getLogger(__name__)

COUNT = 5  # names suggested per prefix (Discord shows up to 25)
TEMPERATURE = 0.8  # a little safer than /dinoname's default: these are previews
DEADLINE = 2.0  # seconds; Discord's own limit is 3 s, and the answer still has to travel
CACHE_SIZE = 4096  # (server, version, prefix) entries
CACHE_SECONDS = 300.0  # suggestions may have been submitted meanwhile: refresh now and then


class Suggestions:
    def __init__(self, generator: NameGenerator, registry: ModelRegistry,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._generator = generator
        self._registry = registry
        self._clock = clock
        self._cache: OrderedDict[tuple[int | None, int | None, str], tuple[float, list[str]]] = OrderedDict()

    async def suggest(self, guild_id: int | None, typed: str, max_len: int = 31) -> list[str]:
        """Up to :data:`COUNT` names the server's model makes from ``typed``, each starting with
        it (normalised) and at most ``max_len`` letters; [] for text that is not a prefix."""
        try:
            prefix = normalize_prefix(typed)
        except InvalidName:
            return []
        if len(prefix) >= max_len:
            return []
        served = self._registry.base if guild_id is None else await self._registry.get(guild_id)
        key = (guild_id, served.version, prefix)
        hit = self._cache.get(key)
        if hit is not None and self._clock() - hit[0] < CACHE_SECONDS:
            self._cache.move_to_end(key)
            return hit[1]
        try:
            result = await asyncio.wait_for(
                self._generator.generate(guild_id, prefix, COUNT, TEMPERATURE), DEADLINE)
        except (asyncio.TimeoutError, InvalidName):
            return []
        names = [n.name for n in result.names if n.complete and len(n.name) <= max_len]
        self._cache[key] = (self._clock(), names)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return names
