"""The Kneser–Ney n-gram and its mixture with the networks.

The vectorised model is checked against a plain-Python reference written straight from the
formulas (dictionaries, recursion, no NumPy), and against a tiny example worked by hand.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from model import (
    CheckpointError,
    ModelConfig,
    NameModel,
    TrainConfig,
    evaluate,
    fine_tune,
    load_checkpoint,
    read_names,
    sample_names,
    save_checkpoint,
    score_name,
    train_model,
    train_path,
    val_path,
)
from model.corpus import EncodedCorpus
from model.mixing import Mixing, fit_mixing, mixture_nll
from model.ngram import NGramCounts, NGramModel, _discounts
from model.vocab import ALPHABET, encode
from tests.support.checkpoint_surgery import read_meta, rewrite, write_meta
from tests.support.model_helpers import tiny_model

NAMES = ["abcde", "abcdf", "bcdea", "cdeab", "deabc", "eabcd", "aaab", "bbba", "abba", "cabbage"]
START, END = "^", ALPHABET[0]


@pytest.fixture(scope="module")
def train_names() -> list[str]:
    return read_names(train_path())


@pytest.fixture(scope="module")
def train_ngram(train_names) -> NGramModel:
    return NGramModel.from_names(train_names, 6)


def networks(hidden: int = 16) -> NameModel:
    """Two small LSTMs: the networks the n-gram is mixed with here."""
    return tiny_model("lstm", hidden, members=2)


# ---------------------------------------------------------------- a reference, from the formulas

class ReferenceKN:
    """Interpolated modified Kneser–Ney, written for clarity: tuples, dicts and recursion."""

    def __init__(self, names: list[str], order: int):
        self.order = order
        raw: Counter = Counter()
        for name in names:
            seq = [START, *name, END]
            for t in range(1, len(seq)):
                gram = tuple(seq[max(0, t - order + 1) : t + 1])
                for n in range(1, len(gram) + 1):
                    raw[gram[-n:]] += 1
        before = defaultdict(set)
        for gram in raw:
            if len(gram) > 1:
                before[gram[1:]].add(gram[0])
        self.adjusted = {g: c if len(g) == order or g[0] == START else len(before[g]) for g, c in raw.items()}
        self.by_context = defaultdict(dict)
        for gram, a in self.adjusted.items():
            self.by_context[gram[:-1]][gram[-1]] = a
        self.discounts = {}
        for n in range(1, order + 1):
            counts = [a for g, a in self.adjusted.items() if len(g) == n]
            n1, n2, n3, n4 = (counts.count(k) for k in (1, 2, 3, 4))
            if min(n1, n2, n3, n4) == 0:
                self.discounts[n] = (0.5, 1.0, 1.5)
            else:
                y = n1 / (n1 + 2 * n2)
                raw = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
                # kept within [0.05 k, k]: tiny corpora can estimate a negative discount
                self.discounts[n] = tuple(min(max(d, 0.05 * k), k) for k, d in enumerate(raw, start=1))

    def prob(self, symbol: str, context: tuple | None) -> float:
        if context is None:
            return 1 / len(ALPHABET)
        lower = context[1:] if context else None
        seen = self.by_context.get(context)
        if not seen:
            return self.prob(symbol, lower)
        d = self.discounts[len(context) + 1]
        total = sum(seen.values())
        gamma = sum(d[min(a, 3) - 1] for a in seen.values()) / total
        a = seen.get(symbol, 0)
        own = max(a - d[min(a, 3) - 1], 0) / total if a else 0.0
        return own + gamma * self.prob(symbol, lower)

    def context(self, history: str) -> tuple:
        seq = (START, *history)
        return tuple(seq[max(0, len(seq) - self.order + 1) :])

    def history_prob(self, symbol: str, history: str) -> float:
        """P(symbol | the letters so far of a name)."""
        return self.prob(symbol, self.context(history))

    def matched_length(self, history: str) -> int:
        """Symbols in the longest end of the history the model has seen as a context."""
        context = self.context(history)
        while context and not self.by_context.get(context):
            context = context[1:]
        return len(context)


def model_probs(ngram: NGramModel, name: str) -> np.ndarray:
    """(len(name) + 1, 27): the vectorised model's distribution before each letter and the end."""
    inputs = np.array([[-1, *encode(name)]]).T
    return ngram.sequence_probs(inputs)[:, 0]


def name_log_prob(ngram: NGramModel, name: str) -> float:
    probs = model_probs(ngram, name)
    return float(sum(math.log(probs[t, target]) for t, target in enumerate(encode(name) + [0])))


# ---------------------------------------------------------------- the n-gram itself

@pytest.mark.parametrize("order", [1, 2, 3, 6, 8])
def test_every_context_is_a_distribution_over_the_27_symbols(train_names, order):
    ngram = NGramModel.from_names(train_names, order)
    assert ngram.table.shape[1] == 27 and np.all(ngram.table > 0)
    np.testing.assert_allclose(ngram.table.sum(axis=1), 1.0, atol=1e-5)
    assert len(ngram.context_keys) == len(ngram.table)


def test_tiny_corpora_and_adapted_counts_are_distributions_too():
    for ngram in (NGramModel.from_names(["abc"], 4), NGramModel.from_names(NAMES, 3).adapted_to(["zzzq"]),
                  NGramModel.from_names([], 3)):
        np.testing.assert_allclose(ngram.table.sum(axis=1), 1.0, atol=1e-5)


def test_a_bigram_worked_by_hand():
    """'aab' and 'aba' as bigrams. Too few counts for count-of-counts: D = 0.5, 1, 1.5.

    Unigram continuation counts: a follows ^, a and b (3); b follows a (1); $ follows a, b (2);
    total 6, γ = (1.5 + 0.5 + 1) / 6 = 1/2. After 'a' the bigram counts are aa 1, ab 2, a$ 1:
    total 4, γ = (0.5 + 1 + 0.5) / 4 = 1/2. After '^': ^a 2, γ = 1/2. After 'b': ba 1, b$ 1.
    """
    ngram = NGramModel.from_names(["aab", "aba"], 2)
    uniform = 0.5 / 27
    p1 = {"a": 1.5 / 6 + uniform, "b": 0.5 / 6 + uniform, END: 1 / 6 + uniform, "z": uniform}
    p = model_probs(ngram, "ab")  # before 'a' (after ^), before 'b' (after a), before the end (after b)
    col = {ch: ALPHABET.index(ch) for ch in p1}
    assert p[0, col["a"]] == pytest.approx(1 / 2 + p1["a"] / 2)
    assert p[0, col["z"]] == pytest.approx(p1["z"] / 2)
    assert p[1, col["a"]] == pytest.approx(0.5 / 4 + p1["a"] / 2)
    assert p[1, col["b"]] == pytest.approx(1 / 4 + p1["b"] / 2)
    assert p[1, col[END]] == pytest.approx(0.5 / 4 + p1[END] / 2)
    assert p[2, col[END]] == pytest.approx(0.5 / 2 + p1[END] / 2)
    assert p[2, col["z"]] == pytest.approx(p1["z"] / 2)


def test_discounts_follow_chen_and_goodman():
    adjusted = np.array([1] * 10 + [2] * 4 + [3] * 3 + [4] * 2 + [9], dtype=float)
    y = 10 / 18
    assert _discounts(adjusted) == pytest.approx((1 - 2 * y * 4 / 10, 2 - 3 * y * 3 / 4, 3 - 4 * y * 2 / 3))
    assert _discounts(np.array([1.0, 1.0, 2.0])) == (0.5, 1.0, 1.5)  # too small to estimate


def test_vectorised_model_equals_the_reference_on_unseen_names(train_names, train_ngram):
    reference = ReferenceKN(train_names, 6)
    for name in read_names(val_path())[:25]:
        probs = model_probs(train_ngram, name)
        for t in range(len(name) + 1):
            expected = [reference.history_prob(ch, name[:t]) for ch in ALPHABET]
            np.testing.assert_allclose(probs[t], expected, rtol=1e-5, err_msg=f"{name!r} after {name[:t]!r}")


def test_sampling_steps_follow_the_same_contexts_as_scoring(train_ngram):
    """advance() one letter at a time (sampling) lands on the rows sequence_rows() finds (scoring)."""
    names = read_names(val_path())[:64]
    inputs, _, mask = EncodedCorpus(names).in_length_order(64).__next__()
    expected = train_ngram.sequence_rows(inputs.T)
    rows = np.zeros(len(inputs), dtype=np.int64)
    for t, ids in enumerate(inputs.T):
        rows = train_ngram.advance(rows, ids)
        np.testing.assert_array_equal(rows[mask[:, t]], expected[t][mask[:, t]])


def test_adapted_counts_replace_earlier_ones_and_leave_the_base_alone():
    base = NGramModel.from_names(NAMES, 4)
    once = base.adapted_to(["zillazilla"])
    twice = once.adapted_to(["zillazilla"])
    np.testing.assert_array_equal(twice.adapted.counts, once.adapted.counts)
    np.testing.assert_array_equal(twice.counts.keys, base.counts.keys)
    before, after = (name_log_prob(m, "zilla") for m in (base, once))
    assert after > before + 5
    merged = NGramCounts.from_names(NAMES + ["zillazilla"], 4)
    np.testing.assert_array_equal(once.table, NGramModel(4, merged).table)


# ---------------------------------------------------------------- the mixture

def test_evaluate_is_the_hand_made_mixture_of_the_two_models():
    ngram, reference = NGramModel.from_names(NAMES, 3), ReferenceKN(NAMES, 3)
    nets = networks()
    weights = (0.3, 0.8, 0.45)  # per matched context length 0, 1, 2
    mixed = nets.with_ngram(ngram, Mixing(weights))
    total, count = 0.0, 0
    for name in ["abcab", "deadbeef", "ab"]:
        inputs, targets = np.array([[-1, *encode(name)]]).T, encode(name) + [0]
        net = sum(m.sequence_probs(inputs) for m in nets.members)[:, 0] / 2
        for t, target in enumerate(targets):
            gram = np.array([reference.history_prob(ch, name[:t]) for ch in ALPHABET])
            k = reference.matched_length(name[:t])
            product = net[t] ** (1 - weights[k]) * gram ** weights[k]
            total -= math.log(product[target] / product.sum())
            count += 1
    # rel 1e-6: the model's table is float32, the reference float64
    assert evaluate(mixed, ["abcab", "deadbeef", "ab"]) == pytest.approx(total / count, rel=1e-6)
    assert score_name(mixed, "deadbeef") != pytest.approx(score_name(nets, "deadbeef"))


def test_step_probabilities_match_the_scored_mixture():
    mixed = networks().with_ngram(NGramModel.from_names(NAMES, 3), Mixing((0.5, 0.6, 0.4)))
    name = "abcdea"
    state, total = mixed.zero_state(1), 0.0
    for inp, tgt in zip([-1, *encode(name)], encode(name) + [0], strict=True):
        probs, state = mixed.step(np.array([inp]), state)
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
        total -= math.log(probs[0, tgt])
    assert total / (len(name) + 1) == pytest.approx(score_name(mixed, name), rel=1e-4)


def test_fitted_weights_minimise_the_validation_nll_per_context_length():
    rng = np.random.default_rng(0)
    net = rng.dirichlet(np.ones(27), size=600)
    gram = rng.dirichlet(np.ones(27), size=600)
    lengths = np.repeat([1, 2, 0], [300, 250, 50])  # length 0: too few positions for its own weight
    share = np.where(lengths == 1, 0.2, 0.8)  # how much of each target comes from the "n-gram"
    targets = np.array([rng.choice(27, p=(1 - s) * a + s * b)
                        for a, b, s in zip(net, gram, share, strict=True)])
    best = fit_mixing(net, gram, targets, lengths, order=3)
    assert best.weights[1] < 0.5 < best.weights[2]
    overall = fit_mixing(net, gram, targets, np.zeros(600, dtype=np.int64), order=1)
    assert best.weights[0] == overall.weights[0]
    loss = mixture_nll(net, gram, targets, lengths, best)
    for k in (1, 2):
        for step in (0.02, -0.02):
            nearby = list(best.weights)
            nearby[k] = min(max(nearby[k] + step, 0.0), 1.0)
            assert loss <= mixture_nll(net, gram, targets, lengths, Mixing(nearby)) + 1e-12


@pytest.mark.parametrize("options", [{}, {"temperature": 0.6}, {"top_k": 5}, {"temperature": 1.8}])
def test_mixture_samples_honour_prefix_avoid_set_and_options(train_names, train_ngram, options):
    mixed = networks().with_ngram(train_ngram, Mixing.uniform(0.55, 6))
    avoid = set(train_names)
    samples = sample_names(mixed, 200, prefix="Tyr", avoid=avoid, rng=np.random.default_rng(0), **options)
    assert len(samples) == 200 and all(s.name.startswith("tyr") for s in samples)
    assert not {s.name for s in samples} & avoid
    assert sample_names(mixed, 5, rng=3) == sample_names(mixed, 5, rng=np.random.default_rng(3))


def test_an_ngram_heavy_mixture_writes_names_like_its_corpus(train_names, train_ngram):
    """Untrained networks plus a real n-gram still write dinosaur-like names: the n-gram is used."""
    mixed = networks().with_ngram(train_ngram, Mixing.uniform(0.95, 6))
    names = [s.name for s in sample_names(mixed, 300, rng=np.random.default_rng(0))]
    assert sum(n.endswith(("saurus", "raptor", "don", "ops", "ia", "us")) for n in names) > 150


# ---------------------------------------------------------------- training, fine-tuning, checkpoints

def test_train_model_fits_the_mixture_on_val_and_order_zero_keeps_the_plain_network():
    config, recipe = ModelConfig("rnn", 8), TrainConfig(epochs=2)
    mixed = train_model(NAMES, NAMES[:3], config, recipe, members=1, ngram_order=3)
    assert mixed.model.ngram.order == 3 and len(mixed.model.mixing.weights) == 3
    assert mixed.val_loss == pytest.approx(evaluate(mixed.model, NAMES[:3]))
    plain = train_model(NAMES, NAMES[:3], config, recipe, members=1, ngram_order=0)
    assert plain.model.ngram is None and plain.model.mixing is None


def test_fine_tune_adds_the_new_names_counts_and_keeps_the_weights():
    base = networks(hidden=8).with_ngram(NGramModel.from_names(NAMES, 3), Mixing.uniform(0.5, 3))
    new = ["zillax", "zillay", "zillaz"]
    result = fine_tune(base, new, new[:1], replay_names=NAMES, train_config=TrainConfig(epochs=2))
    tuned = result.model
    assert tuned.mixing == base.mixing and base.ngram.adapted is None
    np.testing.assert_array_equal(tuned.ngram.counts.keys, base.ngram.counts.keys)
    assert tuned.ngram.adapted is not None
    assert result.val_loss == pytest.approx(evaluate(tuned, new[:1]))
    assert evaluate(NameModel(tuned.members).with_ngram(tuned.ngram, tuned.mixing), ["zillaq"]) < \
        evaluate(NameModel(tuned.members).with_ngram(base.ngram, base.mixing), ["zillaq"])


def test_checkpoint_round_trip_keeps_the_ngram_and_its_weights(tmp_path):
    model = networks().with_ngram(NGramModel.from_names(NAMES, 4).adapted_to(["zorgo"]),
                                  Mixing((0.45, 0.5, 0.4, 0.7)))
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "m.npz", val_loss=1.0))
    assert loaded.mixing == model.mixing and loaded.ngram.order == 4
    for name in ("keys", "counts"):
        np.testing.assert_array_equal(getattr(loaded.ngram.counts, name), getattr(model.ngram.counts, name))
        np.testing.assert_array_equal(getattr(loaded.ngram.adapted, name), getattr(model.ngram.adapted, name))
    assert evaluate(loaded, NAMES) == evaluate(model, NAMES)
    assert "ngram" not in loaded.metadata
    plain = load_checkpoint(save_checkpoint(networks(), tmp_path / "plain.npz"))
    assert plain.ngram is None


def _meta(arrays, **ngram):
    """Change the n-gram's metadata; with no changes, drop it (its arrays stay)."""
    meta = read_meta(arrays)
    if ngram:
        meta["ngram"] = {**meta["ngram"], **ngram}
    else:
        del meta["ngram"]
    write_meta(arrays, meta)


def _swap_first_keys(a):
    a["ngram.keys"][[0, 1]] = a["ngram.keys"][[1, 0]]


@pytest.mark.parametrize("damage", [
    lambda a: a.update({"ngram.keys": a["ngram.keys"].astype(np.float64)}),
    lambda a: a.update({"ngram.counts": -a["ngram.counts"]}),
    lambda a: a.update({"ngram.counts": a["ngram.counts"][:-1]}),
    lambda a: a.pop("ngram.counts"),
    lambda a: a.update({"ngram.extra": np.zeros(3, np.int64)}),
    lambda a: a.update({"ngram.adapted_keys": a["ngram.keys"][:2]}),  # adapted keys without counts
    lambda a: a["ngram.keys"].__setitem__(0, 28),  # predicts the start symbol
    lambda a: a["ngram.keys"].__setitem__(-1, 29 ** 7),  # longer than the order
    _swap_first_keys,
    lambda a: _meta(a, order=2),
    lambda a: _meta(a, weights=[0.5, 0.5, -1.0, 0.5]),
    lambda a: _meta(a, weights=[0.5, 0.5, float("nan"), 0.5]),
    lambda a: _meta(a, weights=[0.5, 0.5, 1.5, 0.5]),
    lambda a: _meta(a, weights=[0.5, 0.5]),  # two weights for a 4-gram
    lambda a: _meta(a, weights=0.5),
    lambda a: _meta(a),  # metadata without the n-gram: its arrays are unexpected
])
def test_corrupt_or_mismatched_ngram_parts_are_refused(tmp_path, damage):
    model = networks().with_ngram(NGramModel.from_names(NAMES, 4), Mixing.uniform(0.5, 4))
    path = save_checkpoint(model, tmp_path / "m.npz")
    rewrite(path, damage)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_table_past_65_536_contexts_keeps_every_row_reachable():
    """Row numbers are stored in 16 bits when they fit; a bigger table must not wrap them."""
    from model.ngram import BASE, _row_of

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    names = ["".join(rng.choice(letters, 12)) for _ in range(12_000)]
    big = NGramModel.from_names(names, order=6)
    assert len(big.context_keys) > 65_536 and big.transitions.dtype == np.int32
    assert NGramModel.from_names(names[:50], order=6).transitions.dtype == np.uint16
    rows = rng.integers(0, len(big.context_keys), 500)
    symbols = rng.integers(0, 26, 500)
    extended = big.context_keys[rows] * BASE + symbols + 1
    expected = np.full(500, -1)
    for n in range(big.order - 1, -1, -1):  # the longest suffix that was seen wins
        found = _row_of(big.context_keys, extended % BASE ** n)
        expected = np.where(expected < 0, found, expected)
    np.testing.assert_array_equal(big.advance(rows, symbols), expected)
