import os
import zipfile

import numpy as np
import pytest

from model import (
    CheckpointError,
    checkpoint_bytes,
    evaluate,
    load_checkpoint,
    load_checkpoint_bytes,
    remove_stale_temp_files,
    save_checkpoint,
)
from tests.support.checkpoint_surgery import read_meta, rewrite, write_meta
from tests.support.model_helpers import TINY_CORPUS, tiny_model


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_round_trip_keeps_weights_and_metadata(tmp_path, cell):
    model = tiny_model(cell, members=2)
    path = save_checkpoint(model, tmp_path / "sub" / "m.npz", val_loss=1.23, note="hello")
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and len(loaded.members) == 2
    for a, b in zip(model.members, loaded.members, strict=True):
        for key in a.params:
            np.testing.assert_array_equal(a.params[key], b.params[key])
    assert loaded.metadata["val_loss"] == 1.23 and loaded.metadata["note"] == "hello"
    assert evaluate(loaded, TINY_CORPUS) == evaluate(model, TINY_CORPUS)
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp files left


def test_bytes_are_the_file_format_and_load_the_same_model(tmp_path):
    model = tiny_model("lstm", members=2)
    data = checkpoint_bytes(model, version=3)
    loaded = load_checkpoint_bytes(data, source="guild 1 v3")
    assert loaded.metadata["version"] == 3 and model.metadata["version"] == 3
    assert evaluate(loaded, TINY_CORPUS) == evaluate(model, TINY_CORPUS)
    path = tmp_path / "m.npz"
    path.write_bytes(data)  # the bytes are exactly a checkpoint file
    assert evaluate(load_checkpoint(path), TINY_CORPUS) == evaluate(model, TINY_CORPUS)
    with pytest.raises(CheckpointError, match="guild 1 v3 is corrupt"):
        load_checkpoint_bytes(data[: len(data) // 2], source="guild 1 v3")


def test_save_replaces_an_existing_file_atomically(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(tiny_model(seed=1), path)
    inode_before = os.stat(path).st_ino
    save_checkpoint(tiny_model(seed=2), path)
    assert os.stat(path).st_ino != inode_before  # a new file was renamed over the old one


def _set_meta(arrays, **changes):
    write_meta(arrays, {**read_meta(arrays), **changes})


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "corrupt"),
    (lambda p: p.write_bytes(b"not a zip at all"), "corrupt"),
    (lambda p: p.write_bytes(b""), "corrupt"),
    (lambda p: rewrite(p, lambda a: a.pop("meta")), "no metadata"),
    (lambda p: rewrite(p, lambda a: _set_meta(a, format_version=99)), "format version"),
    (lambda p: rewrite(p, lambda a: _set_meta(a, alphabet="abc")), "alphabet"),
    (lambda p: rewrite(p, lambda a: _set_meta(a, config={"cell": "lstm", "hidden": 16, "dropout": 0.0})),
     "does not match"),
    (lambda p: rewrite(p, lambda a: a.update({"m0.U": a["m0.U"][:3]})), "does not match"),
    (lambda p: rewrite(p, lambda a: a["m0.W"].__setitem__((0, 0), np.nan)), "NaN"),
    (lambda p: rewrite(p, lambda a: a.update({"extra": np.zeros(2)})), "unexpected"),
    (lambda p: rewrite(p, lambda a: a.update({"meta": np.array([1.5])})), "no metadata"),
])
def test_damaged_or_mismatched_files_are_refused_whole(tmp_path, damage, message):
    path = save_checkpoint(tiny_model(), tmp_path / "m.npz")
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_flipped_byte_inside_the_weights_is_caught_by_the_zip_checksum(tmp_path):
    path = save_checkpoint(tiny_model(hidden=64), tmp_path / "m.npz")
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("m0.U.npy")
    raw = bytearray(path.read_bytes())
    raw[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, meta=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.npz")


def test_stale_temp_files_are_removed(tmp_path):
    (tmp_path / "a").mkdir()
    stale = tmp_path / "a" / ".v3.npz.abc123.tmp"
    stale.write_bytes(b"half")
    keep = save_checkpoint(tiny_model(), tmp_path / "a" / "v2.npz")
    assert remove_stale_temp_files(tmp_path) == [stale]
    assert not stale.exists() and keep.exists()
