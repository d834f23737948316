"""How dinosaur-like a name is, as members understand it: a percentile, not nats.

"More dinosaur-like than 73 % of real dinosaur names" compares the name's score under the
server's model with the same model's scores of every name in the shipped corpus
(``data/dinos_train.txt`` + ``data/dinos_val.txt``). The corpus is scored once per model — a
batched pass of about half a second, in a worker thread — and kept as a sorted list for as long
as the model itself is alive (a weak reference: an evicted model takes its ranks with it).
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bot.services.registry import ModelRegistry
from model import NameModel, normalize_name, read_names, score_name, score_names, train_path, val_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Likeness:
    """A name's standing: its mean NLL per letter and the share of corpus names it beats."""

    name: str
    nats: float  # mean negative log-likelihood per letter under the server's model
    percentile: int  # 0-100: corpus names this model finds *less* dinosaur-like than ``name``
    corpus_size: int


def percentile_of(score: float, corpus_scores: Sequence[float]) -> int:
    """Per cent of ``corpus_scores`` (sorted ascending) strictly worse (higher) than ``score``.

    Rounded down, so "more dinosaur-like than 100 %" means better than every single name.
    """
    if not corpus_scores:
        raise ValueError("no corpus scores to compare with")
    worse = len(corpus_scores) - bisect.bisect_right(corpus_scores, score)
    return worse * 100 // len(corpus_scores)


class LikenessService:
    """Ranks names against the shipped corpus under each server's model."""

    def __init__(self, registry: ModelRegistry, corpus: Sequence[Path] | None = None) -> None:
        self._registry = registry
        self._corpus_paths = tuple(corpus) if corpus is not None else (train_path(), val_path())
        self._names: list[str] | None = None
        self._ranks: weakref.WeakKeyDictionary[NameModel, list[float]] = weakref.WeakKeyDictionary()
        self._pending: weakref.WeakKeyDictionary[NameModel, asyncio.Future[list[float]]] = (
            weakref.WeakKeyDictionary())

    async def rank(self, guild_id: int | None, raw_name: str) -> Likeness:
        """The name's percentile under the model serving ``guild_id`` (the base in DMs).

        Raises ``InvalidName`` for text that is not a name.
        """
        name = normalize_name(raw_name)
        served = self._registry.base if guild_id is None else await self._registry.get(guild_id)
        corpus = await self._corpus_scores(served.model)
        nats = await asyncio.to_thread(score_name, served.model, name)
        return Likeness(name, nats, percentile_of(nats, corpus), len(corpus))

    async def _corpus_scores(self, model: NameModel) -> list[float]:
        """The model's sorted scores of the corpus, computed once per model (concurrent callers
        share one computation)."""
        ranks = self._ranks.get(model)
        if ranks is not None:
            return ranks
        future = self._pending.get(model)
        if future is None:
            future = asyncio.ensure_future(self._score_corpus(model))
            self._pending[model] = future
        return await asyncio.shield(future)

    async def _score_corpus(self, model: NameModel) -> list[float]:
        try:
            if self._names is None:
                self._names = await asyncio.to_thread(_read_all, self._corpus_paths)
            scores = sorted(await asyncio.to_thread(score_names, model, self._names))
            self._ranks[model] = scores
            log.info("scored the %d corpus names under a model for percentiles", len(scores))
            return scores
        finally:
            self._pending.pop(model, None)


def _read_all(paths: Sequence[Path]) -> list[str]:
    names: dict[str, None] = {}
    for path in paths:
        names.update(dict.fromkeys(read_names(path)))
    return list(names)
