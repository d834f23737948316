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
