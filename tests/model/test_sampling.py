import numpy as np
import pytest

from model import (
    BASE_CHECKPOINT,
    InvalidName,
    load_checkpoint,
    read_names,
    sample_names,
    score_name,
    score_names,
    train_path,
)
from model.vocab import encode
from tests.support.model_helpers import tiny_model


@pytest.fixture(scope="module")
def base():
    return load_checkpoint(BASE_CHECKPOINT)


def test_every_sample_starts_with_the_prefix(base):
    samples = sample_names(base, 50, prefix=" Tyr", rng=np.random.default_rng(0))
    assert len(samples) == 50 and all(s.name.startswith("tyr") for s in samples)
    assert len({s.name for s in samples}) == 50


def test_same_seed_same_names_and_other_seed_other_names(base):
    first = sample_names(base, 10, rng=np.random.default_rng(42))
    assert first == sample_names(base, 10, rng=np.random.default_rng(42))
    assert first != sample_names(base, 10, rng=np.random.default_rng(43))


def test_avoid_set_is_honoured(base):
    train = set(read_names(train_path()))
    samples = sample_names(base, 200, avoid=train, rng=np.random.default_rng(1))
    assert len(samples) == 200 and not {s.name for s in samples} & train


def test_an_exhausted_space_returns_fewer_names_rather_than_repeats():
    model = tiny_model()
    samples = sample_names(model, 30, prefix="ab", max_len=3, min_len=3, rng=np.random.default_rng(0))
    names = [s.name for s in samples]
    assert len(names) == len(set(names)) <= 26


def test_length_cap_marks_cut_names_incomplete():
    samples = sample_names(tiny_model(), 100, max_len=5, temperature=3.0, rng=np.random.default_rng(0))
    assert all(len(s.name) <= 5 for s in samples)
    assert any(not s.complete for s in samples)
    assert all(len(s.name) == 5 for s in samples if not s.complete)


def test_names_are_never_shorter_than_the_minimum(base):
    samples = sample_names(base, 300, min_len=3, temperature=2.0, rng=np.random.default_rng(0))
    assert min(len(s.name) for s in samples) >= 3


def test_low_temperature_and_top_k_concentrate_on_likely_names(base):
    cold = sample_names(base, 20, temperature=0.2, rng=np.random.default_rng(0))
    hot = sample_names(base, 20, temperature=1.5, rng=np.random.default_rng(0))
    assert np.mean([score_name(base, s.name) for s in cold if s.complete]) < \
        np.mean([score_name(base, s.name) for s in hot if s.complete])
    top1 = sample_names(base, 5, top_k=1, max_rounds=1, rng=np.random.default_rng(0))
    assert len(top1) == 1  # greedy decoding can only ever produce one name


@pytest.mark.parametrize("kwargs, error", [
    ({"prefix": "ty1"}, InvalidName), ({"prefix": "x" * 40}, InvalidName), ({"n": 0}, ValueError),
    ({"temperature": 0.0}, ValueError), ({"temperature": float("nan")}, ValueError), ({"top_k": 0}, ValueError),
])
def test_bad_options_are_refused(base, kwargs, error):
    options = {"n": 3, **kwargs}
    with pytest.raises(error):
        sample_names(base, **options)


def test_step_by_step_probabilities_match_the_scored_nll(base):
    name = "stegosaurus"
    ids, targets = [-1] + encode(name), encode(name) + [0]
    state, total = base.zero_state(1), 0.0
    for inp, tgt in zip(ids, targets, strict=True):
        probs, state = base.step(np.array([inp]), state)
        total -= np.log(probs[0, tgt])
    assert total / len(ids) == pytest.approx(score_name(base, name), rel=1e-4)


def test_scores_rank_real_looking_names_above_noise(base):
    assert score_name(base, "Tyrannosaurus") < score_name(base, "qxzvkj") - 2.0
    with pytest.raises(InvalidName):
        score_name(base, "t rex")


def test_an_integer_seed_works_like_a_seeded_generator(base):
    assert sample_names(base, 5, rng=7) == sample_names(base, 5, rng=np.random.default_rng(7))


def test_score_names_matches_score_name_one_at_a_time(base):
    """The batched pass gives each name its own mean NLL, in the order given (lengths mixed)."""
    names = ["Tyrannosaurus", "qxzvk", "abc", "velociraptor", "brachiosaurus", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"]
    batched = score_names(base, names)
    assert batched == pytest.approx([score_name(base, name) for name in names], rel=1e-5)  # float32 path
    assert score_names(base, []) == []


def test_score_names_refuses_an_invalid_name(base):
    with pytest.raises(InvalidName, match="digit"):
        score_names(base, ["fine", "ty7"])
