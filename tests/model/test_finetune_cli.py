"""``python -m model finetune``: a fine-tune made outside Discord, judged and saved, never over
the shipped model by accident."""
import re

import pytest

from model import BASE_CHECKPOINT, evaluate, load_checkpoint, read_names, save_checkpoint
from model.ensemble import with_fitted_ngram
from model.ngram import NGramModel
from tests.support.model_helpers import tiny_model

from .cli_runner import progress_lines, run_model

THEMED = [f"{stem}zix" for stem in ("abcab", "bcabc", "cabca", "abbca", "bacca", "ccabb", "acbac", "bbcaa",
                                    "cacab", "abacc")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("finetune")
    save_checkpoint(tiny_model("lstm", members=2), folder / "base.npz", note="tiny base")
    (folder / "server.txt").write_text("\n".join(THEMED) + "\n")
    (folder / "replay.txt").write_text("abcab\nbcabc\ncabca\naabbc\nccbba\nbacab\n")
    (folder / "val.txt").write_text("abcba\ncbacb\n")
    return folder


def finetune(files, *extra):
    return run_model("finetune", "--names", str(files / "server.txt"), "--checkpoint", str(files / "base.npz"),
                     "--replay", str(files / "replay.txt"), "--val", str(files / "val.txt"), *extra)


@pytest.fixture(scope="module")
def subtle(files):
    out = files / "subtle.npz"
    return out, finetune(files, "--strength", "subtle", "--out", str(out))


def test_finetune_reports_progress_the_verdict_and_where_it_saved(subtle):
    out, result = subtle
    assert result.returncode == 0, result.stderr
    lines = progress_lines(result.stderr)
    assert lines[0].startswith("member 1/2 epoch  1/") and "chars/s" in lines[0] and "ETA" in lines[0]
    assert lines[-1].startswith("member 2/2") and "100%" in lines[-1]
    assert re.search(r"on 8 names \(2 held out to judge it\), strength subtle", result.stderr)
    assert re.search(r"held-out names [\d.]+ → [\d.]+ nats/char; base validation names", result.stderr)
    assert "the promotion rule says: " in result.stderr and f"saved {out}" in result.stderr
    meta = load_checkpoint(out).metadata
    assert meta["strength"] == "subtle" and meta["kind"] == "fine-tune" and meta["note"] == "tiny base"


def test_the_fine_tune_is_usable_by_sample_and_eval(subtle, files):
    out, _ = subtle
    sampled = run_model("sample", "--checkpoint", str(out), "-n", "3", "--seed", "1")
    evaluated = run_model("eval", "--checkpoint", str(out), "--names", str(files / "server.txt"))
    assert sampled.returncode == 0 and len(sampled.stdout.split()) == 3
    assert evaluated.returncode == 0 and "10 names" in evaluated.stdout


def test_the_default_strength_is_normal_and_pulls_harder_than_subtle(subtle, files):
    out = files / "normal.npz"
    result = finetune(files, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(out).metadata["strength"] == "normal"
    held = [re.search(r"held-out names ([\d.]+) → ([\d.]+)", r.stderr).groups() for r in (subtle[1], result)]
    (before, after_subtle), (_, after_normal) = [(float(a), float(b)) for a, b in held]
    assert after_normal < after_subtle < before


def test_a_model_with_an_ngram_spends_the_strength_s_budget_on_the_val_file(files):
    """The n-gram's weights are turned down only as far as the budget on the base validation
    names allows, and an operator's tighter --tolerance caps that budget."""

    replay, val = read_names(files / "replay.txt"), read_names(files / "val.txt")
    base = with_fitted_ngram(tiny_model("lstm", members=2), NGramModel.from_names(replay, 3), val)
    save_checkpoint(base, files / "mixed.npz")
    for extra, budget in (((), 0.05), (("--tolerance", "0.01"), 0.01)):
        out = files / f"mixed-{budget}.npz"
        result = run_model("finetune", "--names", str(files / "server.txt"), "--checkpoint", str(files / "mixed.npz"),
                           "--replay", str(files / "replay.txt"), "--val", str(files / "val.txt"),
                           "--out", str(out), *extra)
        assert result.returncode == 0, result.stderr
        assert f"as far down as a budget of {budget:g} on the base validation names" in result.stderr
        tuned = load_checkpoint(out)
        scale = tuned.metadata["mixing_scale"]
        if scale < 1.0:  # turned down: then within the budget on the val file
            assert evaluate(tuned, val) <= evaluate(base, val) + budget + 1e-9


@pytest.mark.parametrize("extra, fragment", [
    ((), "--out PATH"),
    (("--out", str(BASE_CHECKPOINT)), "--replace-shipped"),
    (("--out", "x.npz", "--strength", "extreme"), "invalid choice"),
    (("--out", "x.npz", "--tolerance", "nan"), "finite"),
])
def test_usage_mistakes_are_one_line_and_exit_2_before_any_training(files, extra, fragment):
    shipped = BASE_CHECKPOINT.stat().st_mtime_ns
    result = finetune(files, *extra)
    assert result.returncode == 2 and fragment in result.stderr
    assert "Traceback" not in result.stderr and not progress_lines(result.stderr)
    assert BASE_CHECKPOINT.stat().st_mtime_ns == shipped


def test_too_few_names_is_a_friendly_error(files, tmp_path):
    (tmp_path / "few.txt").write_text("abczix\nbcazix\n")
    result = run_model("finetune", "--names", str(tmp_path / "few.txt"), "--out", str(tmp_path / "o.npz"))
    assert result.returncode == 2 and "at least 5" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.npz").exists()
