"""How dinosaur-like a name is, as members understand it: a percentile, not nats.

"More dinosaur-like than 73 % of real dinosaur names" compares the name's score under the
server's model with the same model's scores of the real names in the shipped validation file
(``data/dinos_val.txt``). Not the training file: the model has learnt those names themselves
(median 0.97 nats/letter against 1.39 on validation names), so against them every invented name,
however good, would rank near the bottom. The corpus is scored once per model — a batched pass
in a worker thread — and kept as a sorted list, keyed by the model's checkpoint file (path, size,
modification time), so a rewritten file is scored afresh. The base model's ranks are computed at start-up
(:meth:`LikenessService.prime`), so the first ``/submit`` does not wait for them.
"""
from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bot.services.registry import ModelRegistry, ServedModel
from model import normalize_name, read_names, score_names, val_path

log = logging.getLogger(__name__)

_CACHED_MODELS = 32  # sorted corpus scores kept (about 1 KB each)


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
        self._corpus_paths = tuple(corpus) if corpus is not None else (val_path(),)
        self._ranks: OrderedDict[tuple, list[float]] = OrderedDict()  # (checkpoint, corpus) -> sorted scores
        self._names: list[str] | None = None
        self._pending: dict[tuple, asyncio.Future[list[float]]] = {}
        self._primer: asyncio.Task | None = None

    def prime(self, served: ServedModel) -> None:
        """Start ranking the corpus under ``served`` now, in the background (at start-up)."""
        self._primer = asyncio.ensure_future(self._corpus_scores(served))
        self._primer.add_done_callback(_log_failure)

    async def close(self) -> None:
        if self._primer is not None and not self._primer.done():
            self._primer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._primer

    async def rank(self, guild_id: int | None, raw_name: str) -> Likeness:
        """The name's percentile under the model serving ``guild_id`` (the base in DMs).

        Raises ``InvalidName`` for text that is not a name.
        """
        name = normalize_name(raw_name)
        served = self._registry.base if guild_id is None else await self._registry.get(guild_id)
        corpus = await self._corpus_scores(served)
        # The same scoring path as the corpus (float32 inference), so equal names compare equal.
        (nats,) = await asyncio.to_thread(score_names, served.model, [name])
        return Likeness(name, nats, percentile_of(nats, corpus), len(corpus))

    async def _corpus_scores(self, served: ServedModel) -> list[float]:
        """The served model's sorted scores of the corpus, computed once per checkpoint file
        (concurrent callers share one computation)."""
        key = (_identity(served), self._corpus_paths)
        ranks = self._ranks.get(key)
        if ranks is not None:
            self._ranks.move_to_end(key)
            return ranks
        future = self._pending.get(key)
        if future is None:
            future = asyncio.ensure_future(self._score_corpus(served, key))
            self._pending[key] = future
        return await asyncio.shield(future)

    async def _score_corpus(self, served: ServedModel, key: tuple) -> list[float]:
        try:
            if self._names is None:
                self._names = await asyncio.to_thread(_read_all, self._corpus_paths)
            scores = sorted(await asyncio.to_thread(score_names, served.model, self._names))
            self._ranks[key] = scores
            while len(self._ranks) > _CACHED_MODELS:
                self._ranks.popitem(last=False)
            log.info("ranked the %d corpus names under %s for percentiles", len(scores), served.source)
            return scores
        finally:
            self._pending.pop(key, None)


def _identity(served: ServedModel) -> tuple:
    """What identifies a served model's weights: the database row it came from (a version's
    bytes are never rewritten), or its checkpoint file as it is on disk (the base)."""
    if served.source.startswith("database: "):
        return ("database", served.source)
    try:
        stat = os.stat(served.source)
    except OSError:  # no file to key on: this object alone
        return ("object", served.model)  # holds the model, so its id cannot be reused meanwhile
    return (served.source, stat.st_size, stat.st_mtime_ns)


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("ranking the corpus at start-up failed; it is retried on first use", exc_info=task.exception())


def _read_all(paths: Sequence[Path]) -> list[str]:
    names: dict[str, None] = {}
    for path in paths:
        names.update(dict.fromkeys(read_names(path)))
    return list(names)
