import numpy as np
import pytest

from model import (
    BASE_CHECKPOINT,
    InvalidName,
    NameRequest,
    load_checkpoint,
    read_names,
    sample_many,
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


class MembershipOnly:
    """An avoid-set that can only answer ``in``: copying or iterating it would fail."""

    def __init__(self, names: set[str]) -> None:
        self._names, self.asked = names, 0

    def __contains__(self, name: object) -> bool:
        self.asked += 1
        return name in self._names

    def __iter__(self):
        raise AssertionError("the avoid-set was iterated (copied) instead of asked")


def test_the_avoid_set_is_asked_never_copied(base):
    """A server's 100 000 names must not be copied per request: only `in` is allowed."""
    train = set(read_names(train_path()))
    avoid = MembershipOnly(train)
    samples = sample_names(base, 50, avoid=avoid, rng=np.random.default_rng(1))
    assert len(samples) == 50 and not {s.name for s in samples} & train
    assert avoid.asked >= 50


def test_sample_many_filters_each_request_by_its_own_avoid_set_only(base):
    """What one request avoids never changes another's names: same seed, same names for B."""
    def requests(a_avoids: set[str]) -> list[NameRequest]:
        return [NameRequest(1, "tyrannosauru", 0.3, a_avoids), NameRequest(1, "tyrannosauru", 0.3)]

    for seed in range(5):
        alone = sample_many(base, requests(set()), rng=seed)
        avoided = sample_many(base, requests({"tyrannosaurus"}), rng=seed)
        assert avoided[1] == alone[1] and avoided[1][0].name == "tyrannosaurus"
        assert "tyrannosaurus" not in {s.name for s in avoided[0]}  # usually nothing else, that cold


def test_sample_many_gives_distinct_names_per_request_and_each_its_count(base):
    results = sample_many(base, [NameRequest(5, "ra"), NameRequest(3, "ra", avoid={"a"}), NameRequest(10, "ra")], rng=3)
    assert [len(r) for r in results] == [5, 3, 10]
    assert all(len({s.name for s in r}) == len(r) and all(s.name.startswith("ra") for s in r) for r in results)


def test_requests_with_their_own_prefix_and_temperature_share_one_batch(base, monkeypatch):
    """200 /dinoname requests with 200 prefixes used to be 200 sampling calls, one after another."""
    import model.sampling as sampling
    calls = []
    real = sampling._draw
    monkeypatch.setattr(sampling, "_draw", lambda *args: calls.append(args[1]) or real(*args))
    prefixes = ["tyr", "vel", "a", "stegos", "brachiosauru", ""]
    temperatures = [0.3, 0.7, 1.0, 1.5, 2.0, 1.2]
    requests = [NameRequest(4, p, t) for p, t in zip(prefixes, temperatures, strict=True)]
    results = sample_many(base, requests, rng=0)
    assert calls[0] == 6 * (4 + 0 + 2)  # round one: every request's rows in one batch
    assert all(rows < calls[0] for rows in calls[1:])  # later rounds: only the requests still short
    for request, names in zip(requests, results, strict=True):
        assert len(names) == 4 and all(s.name.startswith(request.prefix) for s in names)
    cold, hot = results[0], sample_many(base, [NameRequest(4, "tyr", 2.0)] * 30, rng=1)
    assert cold  # and a hot sampler wanders further: more distinct names across many requests
    assert len({s.name for r in hot for s in r}) > len({s.name for r in sample_many(
        base, [NameRequest(4, "tyr", 0.3)] * 30, rng=1) for s in r})


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
