"""Saving and loading name models as one ``.npz`` file with JSON metadata.

The file is written to a temporary sibling, fsynced and moved into place with ``os.replace``,
so a crash leaves either the old file or the new one, never a torn one. Loading never unpickles
(``allow_pickle=False``) and checks everything before building the model: format version,
alphabet, cell, shapes and finiteness. A file that fails any check is refused whole.
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
from .network import PARAM_NAMES, CharModel, ModelConfig
from .vocab import ALPHABET

FORMAT_VERSION = 1
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
    arrays = {f"m{k}.{name}": member.params[name] for k, member in enumerate(model.members) for name in PARAM_NAMES}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    model.metadata = {k: v for k, v in meta.items() if k not in ("alphabet", "format_version")}
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
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}  # reads (and CRC-checks) every member
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(f"checkpoint {source} is corrupt or not a checkpoint: {exc}") from None
    meta = _read_meta(source, arrays.pop("meta", None))
    try:
        config = ModelConfig(**meta["config"])
        members = [CharModel(config, {name: arrays.pop(f"m{k}.{name}") for name in PARAM_NAMES})
                   for k in range(int(meta["members"]))]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {source} does not match its metadata: {exc}") from None
    if arrays:
        raise CheckpointError(f"checkpoint {source} has unexpected arrays: {sorted(arrays)[:5]}")
    for member in members:
        if not all(np.isfinite(p).all() for p in member.params.values()):
            raise CheckpointError(f"checkpoint {source} holds NaN or infinite weights")
    return NameModel(members, {k: v for k, v in meta.items() if k not in ("alphabet", "format_version")})


def _read_meta(path: str, raw: np.ndarray | None) -> dict:
    if raw is None or raw.dtype != np.uint8:
        raise CheckpointError(f"checkpoint {path} has no metadata: not a DinoBot checkpoint")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata: {exc}") from None
    if meta.get("format_version") != FORMAT_VERSION:
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
