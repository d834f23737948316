"""Saving and loading name models as one ``.npz`` file with JSON metadata.

The file is written to a temporary sibling, fsynced and moved into place with ``os.replace``,
so a crash leaves either the old file or the new one, never a torn one. Loading never unpickles
(``allow_pickle=False``) and checks everything before building the model: format version,
alphabet, cell, shapes and finiteness. A file that fails any check is refused whole.

A model with an n-gram part stores its counts as plain int64 arrays (``ngram.keys``,
``ngram.counts``, and for a fine-tune ``ngram.adapted_keys``/``ngram.adapted_counts``) and its
order and mixing weights in the metadata; the probability tables are rebuilt on load (a few
milliseconds). Format 2 added the n-gram; format 1 files (networks only) still load.

The same format also travels as bytes (:func:`checkpoint_bytes`, :func:`load_checkpoint_bytes`),
which is how the bot keeps fine-tuned models in its database.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .ensemble import NameModel
from .errors import CheckpointError
from .mixing import Mixing
from .network import PARAM_NAMES, CharModel, ModelConfig
from .ngram import NGramModel
from .vocab import ALPHABET

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
_NGRAM_PREFIX = "ngram."
TEMP_SUFFIX = ".tmp"


def checkpoint_bytes(model: NameModel, **metadata) -> bytes:
    """The checkpoint of ``model`` as bytes (what :func:`save_checkpoint` writes to disk).

    ``metadata`` is merged over ``model.metadata``; the model's own metadata then matches what
    was serialised, as after a save. A database can keep these bytes next to the row that
    describes them, so a model and its record are written in one transaction.
    """
    meta = {**model.metadata, **metadata, "format_version": FORMAT_VERSION, "alphabet": ALPHABET,
            "config": model.config.to_dict(), "members": len(model.members),
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    meta.pop("ngram", None)
    arrays = {f"m{k}.{name}": member.params[name] for k, member in enumerate(model.members) for name in PARAM_NAMES}
    if model.ngram is not None:
        meta["ngram"] = {"order": model.ngram.order, "weights": list(model.mixing.weights)}
        arrays.update({_NGRAM_PREFIX + key: value for key, value in model.ngram.arrays().items()})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    model.metadata = {k: v for k, v in meta.items() if k not in ("alphabet", "format_version", "ngram")}
    return buffer.getvalue()


def save_checkpoint(model: NameModel, path: str | os.PathLike, **metadata) -> Path:
    """Write ``model`` atomically; ``metadata`` is merged over ``model.metadata``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = checkpoint_bytes(model, **metadata)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a checkpoint is not a secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike) -> NameModel:
    """Load a checkpoint, or raise :class:`CheckpointError` saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from None
    return load_checkpoint_bytes(data, source=str(path))


def load_checkpoint_bytes(data: bytes, source: str = "checkpoint bytes") -> NameModel:
    """Load a checkpoint from its bytes; ``source`` names it in errors (a path, a database row)."""
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array, not an archive
            raise CheckpointError(f"{source} is not a DinoBot checkpoint (one array, not an .npz file)")
        with loaded as npz:
            arrays = {key: npz[key] for key in npz.files}  # reads (and CRC-checks) every member
    except ValueError:
        # NumPy's text for a file that is not .npy/.npz or holds objects suggests allow_pickle,
        # which would run code from the file: never pass that advice on.
        raise CheckpointError(f"{source} is corrupt or not a DinoBot checkpoint (not an .npz file of "
                              f"plain arrays)") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"checkpoint {source} is corrupt or not a checkpoint: {exc}") from None
    meta = _read_meta(source, arrays.pop("meta", None))
    try:
        config = ModelConfig(**meta["config"])
        members = [CharModel(config, {name: arrays.pop(f"m{k}.{name}") for name in PARAM_NAMES})
                   for k in range(int(meta["members"]))]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {source} does not match its metadata: {exc}") from None
    ngram, mixing = _load_ngram(source, meta, arrays)
    if arrays:
        raise CheckpointError(f"checkpoint {source} has unexpected arrays: {sorted(arrays)[:5]}")
    for member in members:
        if not all(np.isfinite(p).all() for p in member.params.values()):
            raise CheckpointError(f"checkpoint {source} holds NaN or infinite weights")
    kept = {k: v for k, v in meta.items() if k not in ("alphabet", "format_version", "ngram")}
    return NameModel(members, kept, ngram, mixing)


def _load_ngram(path: str, meta: dict,
                arrays: dict[str, np.ndarray]) -> tuple[NGramModel | None, Mixing | None]:
    """The n-gram part named in the metadata, its arrays taken out of ``arrays``; checked whole."""
    spec = meta.get("ngram")
    if spec is None:
        return None, None
    mine = {key.removeprefix(_NGRAM_PREFIX): arrays.pop(key) for key in list(arrays)
            if key.startswith(_NGRAM_PREFIX)}
    try:
        ngram = NGramModel.from_arrays(int(spec["order"]), mine)
        mixing = Mixing(tuple(spec["weights"]))
        if len(mixing.weights) != ngram.order:
            raise ValueError(f"{len(mixing.weights)} mixing weights for a {ngram.order}-gram")
        return ngram, mixing
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has an n-gram part that does not match its metadata: "
                              f"{exc}") from None


def _read_meta(path: str, raw: np.ndarray | None) -> dict:
    if raw is None or raw.dtype != np.uint8:
        raise CheckpointError(f"checkpoint {path} has no metadata: not a DinoBot checkpoint")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata: {exc}") from None
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise CheckpointError(f"checkpoint {path} has format version {meta.get('format_version')!r}; "
                              f"this version of DinoBot reads version {FORMAT_VERSION}")
    if meta.get("alphabet") != ALPHABET:
        raise CheckpointError(f"checkpoint {path} was made for another alphabet "
                              f"({meta.get('alphabet')!r}); retrain it for a–z + end-of-name")
    return meta


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete temp files a crash left behind mid-save; returns what was removed."""
    removed = []
    for tmp in Path(directory).rglob(f".*{TEMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
