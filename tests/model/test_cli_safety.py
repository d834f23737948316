"""The model CLI as an unlucky operator meets it (issue 8, items 13 and 14): the shipped model is
never overwritten by accident, help names the program and shows defaults, mistakes get one line."""
import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from model import BASE_CHECKPOINT, Progress, load_checkpoint
from model.cli import _out_path, main

from .cli_runner import progress_lines, run_model

TINY_TRAIN = "abcde\nabcdf\nbcdea\ncdeab\ndeabc\neabcd\n"


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "train.txt").write_text(TINY_TRAIN)
    (tmp_path / "val.txt").write_text("zzqxz\nqqxzz\n")  # unlike the train names: early stopping comes fast
    return tmp_path


def tiny_train(corpus, *extra, cwd=None):
    return run_model("train", "--train", str(corpus / "train.txt"), "--val", str(corpus / "val.txt"),
                     "--cell", "rnn", "--hidden", "8", *extra, cwd=cwd or corpus)


def test_train_writes_a_new_file_by_default_and_says_where(corpus):
    shipped = BASE_CHECKPOINT.stat().st_mtime_ns
    result = tiny_train(corpus, "--members", "1", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    written = list((corpus / "var" / "trained").glob("base-*.npz"))
    assert len(written) == 1 and load_checkpoint(written[0]).metadata["train_names"] == 6
    assert f"saved var/trained/{written[0].name} (the shipped base.npz is unchanged)" in result.stderr
    assert BASE_CHECKPOINT.stat().st_mtime_ns == shipped


def test_train_refuses_to_overwrite_the_shipped_model_without_the_flag(corpus, tmp_path):
    shipped = BASE_CHECKPOINT.stat().st_mtime_ns
    for out in (str(BASE_CHECKPOINT), str(Path("model") / "checkpoints" / ".." / "checkpoints" / "base.npz")):
        result = tiny_train(corpus, "--out", out, cwd=BASE_CHECKPOINT.parents[2])
        assert result.returncode == 2 and "--replace-shipped" in result.stderr
        assert "training" not in result.stderr and "Traceback" not in result.stderr
    assert BASE_CHECKPOINT.stat().st_mtime_ns == shipped


def test_replace_shipped_targets_the_shipped_model_and_nothing_else():
    def args(out, flag):
        return argparse.Namespace(out=Path(out) if out else None, replace_shipped=flag)
    assert _out_path(args(None, True), Path("x.npz")) == BASE_CHECKPOINT
    assert _out_path(args(BASE_CHECKPOINT, True), None) == BASE_CHECKPOINT
    assert _out_path(args("mine.npz", False), Path("x.npz")) == Path("mine.npz")
    assert _out_path(args(None, False), Path("x.npz")) == Path("x.npz")
    with pytest.raises(ValueError, match="drop --out"):
        _out_path(args("mine.npz", True), None)


def test_help_names_the_program_as_it_was_started(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])  # the console script calls main() like this
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("usage: dinomodel ")
    assert run_model("--help").stdout.startswith("usage: python -m model ")
    script = Path(sys.executable).with_name("dinomodel")  # installed by pip install -e
    if script.exists():
        out = subprocess.run([str(script), "sample", "--help"], capture_output=True, text=True, timeout=60)
        assert out.stdout.startswith("usage: dinomodel sample ")


@pytest.mark.parametrize("command, defaults", [
    ("train", ["--epochs EPOCHS       most epochs per network (default: 60)", "(default: 0.015)",
               "networks to ensemble (default: 3)", "(default: lstm)"]),
    ("sample", ["(default: 32)", "(default: 10)", "(default: 1.0)", "the shipped model"]),
    ("finetune", ["(default: normal)", "normal 0.06"]),
])
def test_help_shows_the_defaults(capsys, command, defaults):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for default in defaults:
        assert " ".join(default.split()) in text


@pytest.mark.parametrize("args, code, fragment", [
    (("sample", "--max-len", "2"), 2, "--max-len must be between 3 (the shortest name) and 256, not 2"),
    (("sample", "--checkpoint", "README.md"), 1, "README.md is corrupt or not a DinoBot checkpoint"),
    (("eval", "--checkpoint", "pyproject.toml"), 1, "not a DinoBot checkpoint"),
    (("train", "--members", "0", "--out", "never.npz"), 2, "--members must be at least 1, not 0"),
])
def test_each_mistake_is_one_friendly_line(args, code, fragment):
    result = run_model(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code and len(lines) == 1 and lines[0].startswith("error: ")
    assert fragment in result.stderr
    assert "pickle" not in result.stderr and "training" not in result.stderr


def test_progress_reaches_100_percent_when_early_stopping_ends_training(corpus):
    result = tiny_train(corpus, "--members", "2", "--epochs", "200", "--patience", "2", "--lr", "0.05")
    lines = progress_lines(result.stderr)
    assert result.returncode == 0 and len(lines) < 2 * 200  # it did stop early
    assert lines[-1].startswith("member 2/2") and lines[-1].split("%")[0].endswith("100")
    first_member_end = [line for line in lines if line.startswith("member 1/2")][-1]
    assert " 50%" in first_member_end


def test_the_eta_covers_every_member_not_just_the_one_training():
    p = Progress(epoch=1, epochs=10, train_loss=2.0, val_loss=2.0, best_val_loss=2.0, chars_per_sec=1.0,
                 elapsed=1.0, member=0, members=3)
    assert p.fraction == pytest.approx(1 / 30) and p.eta == pytest.approx(29.0)
    stopped = Progress(epoch=4, epochs=10, train_loss=2.0, val_loss=2.0, best_val_loss=2.0, chars_per_sec=1.0,
                       elapsed=4.0, member=0, members=3, last=True)
    assert stopped.fraction == pytest.approx(1 / 3) and stopped.eta == pytest.approx(8.0)
