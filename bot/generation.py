"""Inventing names for a server: the service behind ``/dinoname`` (no Discord in here).

It picks the server's model from the registry, never repeats a name the server already has
(whatever its status) and labels names that happen to be real dinosaurs when a base corpus is
configured. Sampling a handful of names takes about a millisecond, so it runs on the event loop.
"""
from __future__ import annotations

from dataclasses import dataclass

from model import normalize_prefix, sample_names

from .registry import ModelRegistry, ServedModel
from .store import Store

MAX_COUNT = 10
TEMPERATURE_RANGE = (0.3, 2.0)


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


class NameGenerator:
    def __init__(self, store: Store, registry: ModelRegistry, known_names: frozenset[str] = frozenset()):
        self._store = store
        self._registry = registry
        self.known_names = known_names

    async def generate(self, guild_id: int | None, prefix: str | None = "", count: int = 1,
                       temperature: float = 1.0) -> Generated:
        """Up to ``count`` new names for this server (the base model in DMs, ``guild_id=None``).

        Raises ``InvalidName`` for a bad prefix and ``ValueError`` for out-of-range options,
        both with messages meant for the member.
        """
        prefix = normalize_prefix(prefix)
        if not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be 1–{MAX_COUNT}, not {count}")
        low, high = TEMPERATURE_RANGE
        if not low <= temperature <= high:
            raise ValueError(f"temperature must be between {low} and {high}, not {temperature}")
        if guild_id is None:
            served, taken = self._registry.base, set()
        else:
            served = await self._registry.get(guild_id)
            taken = await self._store.submitted_names(guild_id)
        samples = sample_names(served.model, count, prefix=prefix, temperature=temperature, avoid=taken)
        names = [Invented(s.name, s.name in self.known_names, s.complete) for s in samples]
        return Generated(names, served, prefix, count)
