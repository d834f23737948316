"""Fine-tuning strengths: the schedule each recipe makes, and that a stronger one shows more.

The themed corpus is tiny and synthetic (two-syllable stems with three endings; the theme adds
a new beginning), so a one-member LSTM-16 learns it in a second.
"""
import itertools

import numpy as np
import pytest

from model import (
    DEFAULT_STRENGTH,
    STRENGTHS,
    CharModel,
    ModelConfig,
    NameModel,
    Strength,
    TrainConfig,
    evaluate,
    fine_tune,
    get_strength,
)
from model.ensemble import with_fitted_ngram
from model.mixing import SCALES, Mixing, mixture_nll, scaled, spend_budget
from model.ngram import NGramModel
from model.recipes import replay_samples
from model.sampling import MAX_SAMPLES
from model.strength import MIN_EPOCH_NAMES
from model.training import train
from tests.support.model_helpers import TINY_CORPUS, tiny_model

STEMS = ["".join(p) for p in itertools.permutations(["ba", "ko", "ri", "tu", "me", "sa", "lo"], 2)]
BASE_NAMES = list(np.random.default_rng(0).permutation([s + e for s in STEMS for e in ("rus", "don", "nyx")]))
BASE_TRAIN, BASE_VAL = BASE_NAMES[:100], BASE_NAMES[100:]
THEMED = ["zi" + n for n in BASE_NAMES[:40]]  # a new beginning on names the base knows
TUNE, HELD = THEMED[:30], THEMED[30:]


@pytest.fixture(scope="module")
def base():
    net = CharModel.create(ModelConfig("lstm", 16), np.random.default_rng(0))
    return NameModel([train(net, BASE_TRAIN, BASE_VAL, TrainConfig(epochs=30, lr=2e-2, patience=30)).model])


@pytest.fixture(scope="module")
def tuned(base):
    return {name: fine_tune(base, TUNE, HELD, replay_names=BASE_TRAIN, strength=name).model
            for name in STRENGTHS}


def test_a_stronger_strength_moves_the_held_out_theme_names_more(base, tuned):
    held = {name: evaluate(model, HELD) for name, model in tuned.items()}
    assert held["strong"] < held["normal"] < held["subtle"] < evaluate(base, HELD) - 1.0


def test_and_costs_the_base_names_more(base, tuned):
    cost = {name: evaluate(model, BASE_VAL) - evaluate(base, BASE_VAL) for name, model in tuned.items()}
    assert cost["strong"] > cost["subtle"]


def test_the_result_says_which_strength_made_it(tuned):
    assert {m.metadata["strength"] for m in tuned.values()} == set(STRENGTHS)
    assert all(m.metadata["kind"] == "fine-tune" and m.metadata["fine_tune_names"] == len(TUNE)
               for m in tuned.values())


def test_the_original_model_is_never_touched(base, tuned):
    assert all(m.members[0] is not base.members[0] for m in tuned.values())
    assert "strength" not in base.metadata


@pytest.mark.parametrize("server_names", [1, 20, 80, 300, 3000])
def test_the_schedule_makes_about_the_recipe_s_steps_whatever_the_server_size(server_names):
    strength = STRENGTHS[DEFAULT_STRENGTH]
    repeats, config = strength.schedule(server_names)
    epoch_names = repeats * (server_names + round(strength.replay_ratio * server_names))
    steps = config.epochs * -(-epoch_names // config.batch_size)
    assert repeats == 1 or epoch_names >= MIN_EPOCH_NAMES  # a tiny server's names repeat
    assert steps >= strength.steps * 0.9 and (config.epochs == 1 or steps <= strength.steps * 1.1)
    assert not config.keep_best and config.lr == strength.lr


def test_a_large_server_still_sees_every_name_once():
    repeats, config = STRENGTHS["normal"].schedule(20_000)
    assert repeats == 1 and config.epochs == 1


def test_strengths_are_found_by_name_and_unknown_ones_are_refused_with_the_choices():
    assert get_strength(" Strong ") is STRENGTHS["strong"]
    custom = Strength("mine", replay_ratio=3.0, lr=1e-3, steps=10, tolerance=0.05)
    assert get_strength(custom) is custom
    with pytest.raises(ValueError, match="subtle, normal, strong"):
        get_strength("extreme")
    with pytest.raises(ValueError, match="positive"):
        Strength("bad", replay_ratio=0.0, lr=1e-3, steps=10, tolerance=0.05)


def test_the_last_epoch_is_kept_not_the_one_closest_to_the_base():
    seen = []
    unlike = ["zzzzqx", "qqqxz"]  # validation names the fine-tune only gets worse on
    fit = fine_tune(tiny_model(), TINY_CORPUS[:4], unlike, replay_names=TINY_CORPUS,
                    strength=Strength("s", 1.0, 1e-2, 100, 0.1), progress=seen.append)
    assert len(seen) > 2 and seen[-1].last and seen[-1].val_loss > seen[0].val_loss
    assert fit.val_loss == pytest.approx(seen[-1].val_loss, rel=1e-5)


def test_a_replay_pool_smaller_than_an_epoch_s_share_is_drawn_with_replacement():
    fit = fine_tune(tiny_model(), TINY_CORPUS, TINY_CORPUS[:2], replay_names=["abcab"], replay_ratio=3.0,
                    train_config=TrainConfig(epochs=1))
    assert fit.model.metadata["replay_names"] == 3 * len(TINY_CORPUS)
    assert fit.model.metadata["strength"] == "custom"


def test_self_replay_stays_within_the_sampler_s_cap():
    names = replay_samples(tiny_model(), 10 * MAX_SAMPLES, seed=np.random.default_rng(0))
    assert 0 < len(names) <= MAX_SAMPLES


# --------------------------------------------------------------------------- the base-name budget

@pytest.fixture(scope="module")
def mixed_base(base):
    """The tiny base with a 4-gram mixed in, its weights fitted on val (the shipped model has a 6-gram)."""
    return with_fitted_ngram(base, NGramModel.from_names(BASE_TRAIN, 4), BASE_VAL)


def test_spend_budget_picks_the_smallest_scale_within_the_budget():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 5, 400)
    ngram = np.full((400, 5), 0.05)
    ngram[np.arange(400), targets] = 0.8  # the n-gram knows these names; the "networks" do not
    net = np.full((400, 5), 0.2)
    lengths = rng.integers(0, 3, 400)
    reference = Mixing((0.5, 0.6, 0.9))
    nll = {s: mixture_nll(net, ngram, targets, lengths, scaled(reference, s)) for s in SCALES}
    before, positions = nll[1.0], (net, ngram, targets, lengths)
    budget = (nll[0.7] - before + nll[0.675] - before) / 2  # between the costs of 0.7 and 0.675
    scale, cost = spend_budget(positions, reference, before, budget)
    assert scale == 0.7 and cost == pytest.approx(nll[0.7])
    assert spend_budget(positions, reference, before, 0.0)[0] == 1.0
    assert spend_budget(positions, reference, before, 10.0)[0] == min(SCALES)


def test_spend_budget_never_makes_the_held_out_names_worse_than_before():
    rng = np.random.default_rng(1)
    targets, lengths = rng.integers(0, 5, 400), rng.integers(0, 3, 400)
    ngram = np.full((400, 5), 0.05)
    ngram[np.arange(400), targets] = 0.8
    net = np.full((400, 5), 0.2)
    reference, positions = Mixing((0.5, 0.6, 0.9)), (net, ngram, targets, lengths)
    before = mixture_nll(net, ngram, targets, lengths, reference)
    # The same positions stand for the held-out names: any scale below 1 makes them worse.
    assert spend_budget(positions, reference, before, 10.0, held=positions, held_limit=before)[0] == 1.0
    limit = mixture_nll(net, ngram, targets, lengths, scaled(reference, 0.9))
    assert spend_budget(positions, reference, before, 10.0, held=positions, held_limit=limit + 1e-9)[0] == 0.9


def test_a_budget_turns_the_ngram_down_within_it_on_the_base_names(mixed_base):
    strength = Strength("b", replay_ratio=1.0, lr=5e-3, steps=60, tolerance=0.5, ngram_weight=2, budget=0.3)
    fit = fine_tune(mixed_base, TUNE, HELD, replay_names=BASE_TRAIN, strength=strength, base_names=BASE_VAL)
    scale = fit.model.metadata["mixing_scale"]
    assert scale < 1.0
    assert fit.model.mixing == scaled(mixed_base.mixing, scale)
    assert evaluate(fit.model, BASE_VAL) <= evaluate(mixed_base, BASE_VAL) + 0.3 + 1e-9


def test_without_a_budget_the_weights_are_the_model_s(mixed_base):
    strength = Strength("b", replay_ratio=1.0, lr=5e-3, steps=30, tolerance=0.5, ngram_weight=2)
    fit = fine_tune(mixed_base, TUNE, HELD, replay_names=BASE_TRAIN, strength=strength, base_names=BASE_VAL)
    assert fit.model.mixing == mixed_base.mixing and "mixing_scale" not in fit.model.metadata


def test_a_fine_tune_of_a_fine_tune_scales_the_first_model_s_weights_not_its_own(mixed_base):
    strength = Strength("b", replay_ratio=1.0, lr=5e-3, steps=30, tolerance=0.5, ngram_weight=2, budget=0.3)
    first = fine_tune(mixed_base, TUNE, HELD, replay_names=BASE_TRAIN, strength=strength, base_names=BASE_VAL)
    second = fine_tune(first.model, TUNE, HELD, replay_names=BASE_TRAIN, strength=strength, base_names=BASE_VAL)
    assert first.model.metadata["mixing_scale"] < 1.0
    assert second.model.metadata["reference_mixing"] == list(mixed_base.mixing.weights)
    assert second.model.mixing == scaled(mixed_base.mixing, second.model.metadata["mixing_scale"])


def test_without_base_names_the_budget_is_measured_on_the_model_s_own_samples(mixed_base):
    strength = Strength("b", replay_ratio=1.0, lr=5e-3, steps=30, tolerance=0.5, ngram_weight=2, budget=0.3)
    fit = fine_tune(mixed_base, TUNE, HELD, replay_names=BASE_TRAIN, strength=strength)
    assert "mixing_scale" in fit.model.metadata


def test_a_budget_beyond_the_tolerance_is_refused():
    with pytest.raises(ValueError, match="budget"):
        Strength("bad", replay_ratio=1.0, lr=1e-3, steps=10, tolerance=0.05, budget=0.06)
    assert all(s.budget is not None and s.budget <= s.tolerance for s in STRENGTHS.values())
    assert STRENGTHS["subtle"].budget < STRENGTHS["normal"].budget < STRENGTHS["strong"].budget


def test_a_tighter_tolerance_caps_the_budget_and_a_looser_one_leaves_it():
    normal = STRENGTHS["normal"]
    assert normal.within(None) is normal and normal.within(0.5) is normal
    assert normal.within(0.02).budget == 0.02 and normal.within(-0.1).budget == 0.0
    assert normal.within(0.02).tolerance == normal.tolerance and normal.within(0.02).name == "normal"
