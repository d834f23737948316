"""Which model answers which server: the shipped base until a server has its own.

The registry resolves a guild lazily, the first time it is asked: the newest *promoted*
version (per the store) whose checkpoint loads; a missing or corrupt file is logged and the
previous promoted version is tried, down to the base. A moderator may choose an earlier promoted
version (or the base) with :meth:`ModelRegistry.use`; the choice is stored, so it is what a
restart resolves to, until a newer version is promoted. Fine-tuned models are kept in a bounded
LRU; the base is always in memory and shared, which is safe because a
:class:`~model.NameModel` is never modified after it is built (training works on copies).

Swapping is a dictionary assignment on the event loop: a request that already holds a
:class:`ServedModel` keeps using it, the next request gets the new one. Every entry is keyed
by guild id, so one guild's versions, broken checkpoints or evictions never change another's.

Checkpoints live in the database, next to their version rows (``store.versions.checkpoint``),
so every process of a cluster can serve every server without a shared disk. Each is checked
against the SHA-256 recorded with it and then as a checkpoint (zip CRCs, shapes, finite
weights) before it is served. Versions recorded by an older DinoBot name a file under
``legacy_dir`` instead (``<guild>/v<N>.npz``); :meth:`ModelRegistry.start` copies each such
file that loads into the database once, and leaves the file where it is.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from bot.errors import NotFound, VersionNotServable
from bot.services.records import ModelInfo
from bot.services.store import ModelVersion, Store, VersionStatus
from model import BASE_CHECKPOINT, CheckpointError, NameModel, load_checkpoint, load_checkpoint_bytes

log = logging.getLogger(__name__)

_MAX_BASE_GUILDS = 100_000  # guild ids remembered as "served by the base" (a few MB at most)


@dataclass(frozen=True)
class ServedModel:
    """A model plus what a reply might say about it. Immutable: safe to hold across awaits."""

    model: NameModel
    version: int | None  # None: the shipped base model
    val_loss: float | None
    trained_at: float | None  # unix seconds the version finished training; None for the base
    names_count: int  # server names the version was fine-tuned with (0 for the base)
    source: str  # where it was loaded from: the base file, or the database row

    @property
    def is_base(self) -> bool:
        return self.version is None

    def describe(self) -> ModelInfo:
        """The facts a reply shows about this model, so the Discord layer never reads weights."""
        config, meta = self.model.config, self.model.metadata
        network = f"{len(self.model.members)} × {config.cell.upper()}-{config.hidden}"
        if self.model.ngram is not None:
            network += f" + {self.model.ngram.order}-gram"
        if self.is_base:
            created = meta.get("created")
            trained_at = datetime.fromisoformat(created).timestamp() if created else None
            return ModelInfo(None, network, self.val_loss, trained_at,
                             f"{meta.get('train_names', '?')} dinosaur names")
        return ModelInfo(self.version, network, self.val_loss, self.trained_at,
                         f"{self.names_count} names from this server")


class ModelRegistry:
    """Serves each guild its newest good model. Call :meth:`start` once before :meth:`get`."""

    def __init__(self, store: Store, legacy_dir: str | Path | None = None, *,
                 base_checkpoint: str | Path = BASE_CHECKPOINT, max_cached: int = 8) -> None:
        self._store = store
        self.legacy_dir = None if legacy_dir is None else Path(legacy_dir)
        self._base_path = Path(base_checkpoint)
        self.max_cached = max_cached
        self._base: ServedModel | None = None
        self._models: OrderedDict[int, ServedModel] = OrderedDict()  # fine-tuned, LRU order
        self._on_base: OrderedDict[int, None] = OrderedDict()  # guilds known to have none
        self._loading: dict[int, asyncio.Future[ServedModel]] = {}
        self._swaps: dict[int, int] = {}  # guild -> swaps so far: a load that saw fewer is stale
        self._swap_listeners: list[Callable[[int, ServedModel], None]] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the base model, and move an older DinoBot's checkpoint files into the database."""
        model = await asyncio.to_thread(load_checkpoint, self._base_path)
        meta_loss = model.metadata.get("val_loss")
        self._base = ServedModel(model, None, meta_loss, None, 0, str(self._base_path))
        await self._adopt_legacy_files()
        log.info("model registry ready: base %s", self._base_path)

    async def _adopt_legacy_files(self) -> None:
        """Store the bytes of promoted versions that only have a file (each once, in its own
        transaction); a file that is missing or does not load is reported and left alone."""
        if self.legacy_dir is None:
            return
        for version in await self._store.versions.without_checkpoint():
            path = self.resolve_path(version.checkpoint_path)
            try:
                await asyncio.to_thread(load_checkpoint, path)
                data = await asyncio.to_thread(path.read_bytes)
            except (CheckpointError, OSError) as exc:
                log.error("guild %d version %d: its checkpoint file cannot be moved into the database "
                          "(%s); the previous good version will be served", version.guild_id, version.version, exc)
                continue
            if await self._store.versions.attach_checkpoint(version.guild_id, version.version, data):
                log.info("guild %d version %d: stored %s in the database", version.guild_id, version.version, path)

    # ------------------------------------------------------------------ serving

    @property
    def base(self) -> ServedModel:
        """The shipped model (what every guild without its own promoted version gets)."""
        if self._base is None:
            raise RuntimeError("ModelRegistry.start() has not been awaited")
        return self._base

    async def get(self, guild_id: int) -> ServedModel:
        """The model this guild should be served right now."""
        base = self.base
        if guild_id in self._models:
            self._models.move_to_end(guild_id)
            return self._models[guild_id]
        if guild_id in self._on_base:
            self._on_base.move_to_end(guild_id)
            return base
        future = self._loading.get(guild_id)
        if future is None:
            future = asyncio.ensure_future(self._resolve(guild_id))
            self._loading[guild_id] = future
            future.add_done_callback(lambda f: self._forget_loading(guild_id, f))
        # Shielded: one caller giving up must not cancel the load other callers wait for.
        return await asyncio.shield(future)

    def swap_in(self, guild_id: int, served: ServedModel) -> None:
        """Serve ``served`` to this guild from now on (after its version is committed)."""
        self._swaps[guild_id] = self._swaps.get(guild_id, 0) + 1
        if served.is_base:
            self._models.pop(guild_id, None)
            self._remember(guild_id, served, self._swaps[guild_id])
        else:
            self._on_base.pop(guild_id, None)
            self._models[guild_id] = served
            self._models.move_to_end(guild_id)
            self._evict()
        log.info("guild %d now served version %s", guild_id, served.version)
        for listener in list(self._swap_listeners):
            try:
                listener(guild_id, served)
            except Exception:  # a listener's bug must not undo a promotion
                log.exception("a swap listener failed for guild %d", guild_id)

    def on_swap(self, listener: Callable[[int, ServedModel], None]) -> None:
        """Call ``listener(guild_id, served)`` on the event loop after every swap_in."""
        self._swap_listeners.append(listener)

    async def use(self, guild_id: int, version: int | None, actor_id: int) -> ServedModel:
        """Serve an earlier promoted ``version`` (None: the base model) from now on; audited.

        The choice is stored before the swap, so a restart serves the same, and a later
        fine-tune starts from it (it fine-tunes whatever :meth:`get` returns). Raises
        :class:`NotFound` for a version this guild never had and :class:`VersionNotServable`
        for a discarded one or one whose checkpoint no longer loads; nothing changes then.
        """
        if version is None:
            served = self.base
        else:
            found = [v for v in await self._store.versions.list(guild_id) if v.version == version]
            if not found:
                raise NotFound(f"Model version {version}")
            if found[0].status is not VersionStatus.PROMOTED:
                raise VersionNotServable(version, "it was discarded when it was made", _sentence(found[0].reason))
            loaded = await self._load(guild_id, found[0])
            if loaded is None:
                raise VersionNotServable(version, "its checkpoint is missing or damaged (see the log)")
            served = loaded
        current = await self.get(guild_id)
        await self._store.serving.choose(guild_id, version, actor_id, was_serving=current.version)
        self.swap_in(guild_id, served)
        return served

    def cached_guilds(self) -> list[int]:
        """Guilds whose fine-tuned model is in memory, least recently used first."""
        return list(self._models)

    # ------------------------------------------------------------------ where models come from

    @staticmethod
    def source_of(guild_id: int, version: int) -> str:
        """How a version stored in the database is named in logs and errors."""
        return f"database: guild {int(guild_id)} v{int(version)}"

    def resolve_path(self, stored: str | Path) -> Path:
        """A legacy checkpoint path as recorded in the store (relative ones are under legacy_dir)."""
        return (self.legacy_dir or Path()) / stored

    # ------------------------------------------------------------------ internals

    async def _resolve(self, guild_id: int) -> ServedModel:
        """The chosen version, else the newest promoted one, that loads (else the one before
        it, down to the base); then remember it."""
        served, swaps = self.base, self._swaps.get(guild_id, 0)
        promoted = await self._store.versions.list(guild_id, VersionStatus.PROMOTED)
        choice = await self._store.serving.get(guild_id)
        if choice is not None:
            ceiling = 0 if choice.version is None else choice.version
            promoted = [v for v in promoted if v.version <= ceiling]
        for version in reversed(promoted):
            loaded = await self._load(guild_id, version)
            if loaded is not None:
                served = loaded
                break
        return self._remember(guild_id, served, swaps)

    async def _load(self, guild_id: int, version: ModelVersion) -> ServedModel | None:
        source = self.source_of(guild_id, version.version)
        stored = await self._store.versions.checkpoint(guild_id, version.version)
        if stored is None:
            log.error("guild %d version %d is promoted but its checkpoint is not in the database; "
                      "falling back to the previous good version", guild_id, version.version)
            return None
        try:
            model = await asyncio.to_thread(_verified_model, *stored, source)
        except CheckpointError as exc:
            log.error("guild %d version %d cannot be served (%s); falling back to the previous "
                      "good version", guild_id, version.version, exc)
            return None
        return ServedModel(model, version.version, version.val_loss_after, version.finished_at,
                           version.names_used, source)

    def _remember(self, guild_id: int, served: ServedModel, swaps: int) -> ServedModel:
        """Cache a resolved model unless another one was swapped in while it loaded (``swaps``:
        the guild's swap count when the load started)."""
        if self._swaps.get(guild_id, 0) != swaps:
            current = self._models.get(guild_id)
            return current if current is not None else self.base
        if served.is_base:
            self._on_base[guild_id] = None
            while len(self._on_base) > _MAX_BASE_GUILDS:
                self._on_base.popitem(last=False)
            return served
        self._models[guild_id] = served
        self._evict()
        return served

    def _evict(self) -> None:
        while len(self._models) > self.max_cached:
            guild_id, served = self._models.popitem(last=False)
            log.debug("evicted guild %d version %s from memory", guild_id, served.version)

    def _forget_loading(self, guild_id: int, future: asyncio.Future) -> None:
        if self._loading.get(guild_id) is future:
            del self._loading[guild_id]


def _verified_model(data: bytes, sha256: str, source: str) -> NameModel:
    """The model in ``data``, once its bytes match the digest recorded with them."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(f"checkpoint {source} does not match its recorded SHA-256")
    return load_checkpoint_bytes(data, source=source)


def _sentence(reason: str) -> str:
    """A recorded verdict as a sentence (older rows read "discarded: validation loss got worse …")."""
    reason = reason.removeprefix("discarded: ").strip()
    if not reason:
        return ""
    reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith((".", "!", "?")) else reason + "."
