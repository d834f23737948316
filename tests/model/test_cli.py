"""The model CLI as a user runs it: a real subprocess, real files, real exit codes."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from model import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def run(*args, env_extra=None):
    import os
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "model", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "train.txt").write_text("\n".join(["abcde", "abcdf", "bcdea", "cdeab", "Deabc", "", "eabcd"]) + "\n")
    (folder / "val.txt").write_text("abcde\nbcdea\n")
    out = folder / "tiny.npz"
    result = run("train", "--train", str(folder / "train.txt"), "--val", str(folder / "val.txt"), "--out", str(out),
                 "--cell", "rnn", "--hidden", "16", "--members", "2", "--epochs", "5")
    assert result.returncode == 0, result.stderr
    return folder, out, result


def test_train_logs_a_line_per_epoch_and_saves(trained):
    _, out, result = trained
    lines = [line for line in result.stderr.splitlines() if "epoch" in line]
    assert len(lines) >= 2 and "val" in lines[0] and "chars/s" in lines[0] and "ETA" in lines[0]
    assert load_checkpoint(out).metadata["train_names"] == 6


def test_train_mixes_in_a_6_gram_by_default_and_ngram_order_0_keeps_the_plain_rnn(trained):
    folder, out, result = trained
    assert "mixed with a 6-gram" in result.stderr and load_checkpoint(out).ngram.order == 6
    plain = folder / "plain.npz"
    result = run("train", "--train", str(folder / "train.txt"), "--val", str(folder / "val.txt"), "--out", str(plain),
                 "--cell", "rnn", "--hidden", "8", "--members", "1", "--epochs", "2", "--ngram-order", "0")
    assert result.returncode == 0, result.stderr
    model = load_checkpoint(plain)
    assert model.ngram is None and model.config.cell == "rnn" and len(model.members) == 1


def test_plain_rnn_is_the_seeds_model_behind_one_flag(trained):
    folder, _, _ = trained
    plain = folder / "seed.npz"
    result = run("train", "--train", str(folder / "train.txt"), "--val", str(folder / "val.txt"), "--out", str(plain),
                 "--plain-rnn", "--hidden", "8", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    model = load_checkpoint(plain)
    assert model.ngram is None and model.config.cell == "rnn" and len(model.members) == 1
    assert model.config.dropout == 0 and model.config.hidden == 8
    assert "training 1 × rnn-8" in result.stderr


def test_sample_prints_one_name_a_line(trained):
    _, out, _ = trained
    result = run("sample", "--checkpoint", str(out), "--prefix", "ab", "-n", "4", "--seed", "1")
    names = result.stdout.split()
    assert result.returncode == 0 and len(names) == 4
    assert all(n.rstrip("…").startswith("ab") for n in names)
    assert run("sample", "--checkpoint", str(out), "--prefix", "ab", "-n", "4", "--seed", "1").stdout == result.stdout


def test_sample_reports_how_many_names_are_new_like_makemore():
    result = run("sample", "-n", "50", "--seed", "3")
    new, in_train, in_val = map(int, re.search(r"50 names: (\d+) new, (\d+) in train, (\d+) in val",
                                                result.stderr).groups())
    assert new + in_train + in_val == 50 and new > 25
    forced = run("sample", "-n", "20", "--new-only", "--seed", "3")
    assert "20 names: 20 new, 0 in train, 0 in val" in forced.stderr


def test_eval_reports_nats_and_bits_of_a_names_file(trained):
    folder, out, _ = trained
    result = run("eval", "--checkpoint", str(out), "--names", str(folder / "val.txt"))
    assert result.returncode == 0 and "nats/char" in result.stdout and "bits/char" in result.stdout


def test_default_eval_uses_the_shipped_checkpoint_and_val_file():
    result = run("eval")
    assert result.returncode == 0 and "dinos_val.txt: 137 names" in result.stdout


def test_score_prints_each_name_with_its_nll():
    result = run("score", "Tyrannosaurus", "qxzvk")
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and lines[0].startswith("tyrannosaurus\t") and len(lines) == 2


@pytest.mark.parametrize("args, code, fragment", [
    (("score", "t-rex"), 2, "hyphen"),
    (("sample", "--prefix", "ty7"), 2, "digit '7'"),
    (("sample", "--temperature", "0"), 2, "temperature"),
    (("eval", "--checkpoint", "/nonexistent.npz"), 1, "not found"),
    (("eval", "--names", "/nonexistent.txt"), 1, "not found"),
    (("train", "--hidden", "0"), 2, "hidden size"),
    (("train", "--ngram-order", "-1"), 2, "--ngram-order must be 0–12"),
    (("bogus",), 2, "invalid choice"),
])
def test_errors_are_one_friendly_line_with_a_proper_exit_code(args, code, fragment):
    result = run(*args)
    assert result.returncode == code
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_corpus_dir_is_configurable(tmp_path):
    (tmp_path / "dinos_val.txt").write_text("raptor\n")
    result = run("eval", env_extra={"DINO_CORPUS_DIR": str(tmp_path)})
    assert result.returncode == 0 and "1 names" in result.stdout


def test_a_bad_line_in_a_names_file_is_reported_with_its_number(tmp_path):
    (tmp_path / "bad.txt").write_text("raptor\nt rex\n")
    result = run("eval", "--names", str(tmp_path / "bad.txt"))
    assert result.returncode == 1 and "line 2" in result.stderr
