import threading

import numpy as np
import pytest

from model import (
    BASE_CHECKPOINT,
    CharModel,
    ModelConfig,
    NameModel,
    TrainConfig,
    evaluate,
    fine_tune,
    get_strength,
    load_checkpoint,
    read_names,
    sample_names,
    train_model,
    train_path,
    val_path,
)
from model.training import EncodedCorpus, train
from tests.support.model_helpers import TINY_CORPUS, tiny_model


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_overfits_a_tiny_corpus(cell):
    model = CharModel.create(ModelConfig(cell=cell, hidden=32), np.random.default_rng(0))
    result = train(model, TINY_CORPUS, TINY_CORPUS, TrainConfig(epochs=150, lr=2e-2, batch_size=4, patience=150))
    assert result.best_val_loss < 0.45  # ln 27 = 3.3 at the start: it has memorised the names
    samples = sample_names(NameModel([result.model]), 20, temperature=0.5, rng=np.random.default_rng(0),
                           max_rounds=1)
    assert sum(s.name in TINY_CORPUS for s in samples) >= 5


def test_keeps_the_best_weights_and_reports_progress_every_epoch():
    seen = []
    model = CharModel.create(ModelConfig(hidden=16), np.random.default_rng(0))
    result = train(model, TINY_CORPUS, TINY_CORPUS[:3], TrainConfig(epochs=5, lr=1e-2), progress=seen.append)
    assert [p.epoch for p in seen] == [1, 2, 3, 4, 5]
    assert result.best_val_loss == min(p.val_loss for p in seen)
    assert evaluate(NameModel([result.model]), TINY_CORPUS[:3]) == pytest.approx(result.best_val_loss, rel=1e-5)
    assert 0 < seen[-1].fraction <= 1 and seen[-1].eta == pytest.approx(0)


def test_early_stopping_stops_when_validation_stalls():
    model = CharModel.create(ModelConfig(hidden=32), np.random.default_rng(0))
    # Validation names unlike the training names: val loss soon rises while train loss falls.
    result = train(model, TINY_CORPUS, ["zzzzqx", "qqqxz"], TrainConfig(epochs=200, lr=3e-2, patience=3))
    assert result.stopped_early and result.epochs_run < 200
    assert result.epochs_run - result.best_epoch == 3


def test_stop_flag_set_from_another_thread_cancels_training():
    stop = threading.Event()
    model = CharModel.create(ModelConfig(hidden=16), np.random.default_rng(0))

    def stop_after_two(progress):
        if progress.epoch == 2:
            threading.Thread(target=stop.set).start()

    result = train(model, TINY_CORPUS * 50, TINY_CORPUS, TrainConfig(epochs=1000, batch_size=2),
                   progress=stop_after_two, should_stop=stop.is_set)
    assert result.cancelled and result.epochs_run < 10


def test_batches_group_similar_lengths_and_cover_every_name_once():
    names = ["abc", "abcdefghijklmnop", "abd", "abcdefghijklmnoq", "abe", "abf"]
    corpus = EncodedCorpus(names)
    batches = list(corpus.batches(2, np.random.default_rng(0)))
    assert sum(int(mask[:, 0].sum()) for _, _, mask in batches) == len(names)
    widths = sorted(inputs.shape[1] for inputs, _, _ in batches)
    assert widths == [4, 4, 17]  # no short name is padded to the long ones' width


def test_fine_tune_learns_new_names_without_touching_the_original():
    base = tiny_model("lstm", hidden=32, members=2)
    before = {k: v.copy() for k, v in base.members[0].params.items()}
    new = ["zorgosaurus", "zorgodon", "zorgotitan", "zorgoraptor"]
    result = fine_tune(base, new, new[:2], replay_names=TINY_CORPUS,
                       train_config=TrainConfig(epochs=30, lr=1e-2, patience=30))
    assert result.val_loss < evaluate(base, new[:2]) - 0.5
    for key, value in base.members[0].params.items():
        np.testing.assert_array_equal(value, before[key])
    assert result.model.metadata["kind"] == "fine-tune" and result.model.metadata["fine_tune_names"] == 4


def test_fine_tune_without_a_corpus_replays_the_models_own_samples():
    base = tiny_model("rnn", hidden=16)
    result = fine_tune(base, ["raptorix", "raptorax"], ["raptorix"], train_config=TrainConfig(epochs=3))
    assert result.model.metadata["replay_names"] == round(2 * get_strength("normal").replay_ratio)
    assert np.isfinite(result.val_loss)


def test_train_model_ensembles_members_with_distinct_seeds():
    result = train_model(TINY_CORPUS, TINY_CORPUS[:2], ModelConfig(hidden=8), TrainConfig(epochs=2), members=2)
    a, b = (m.params["U"] for m in result.model.members)
    assert not np.array_equal(a, b)
    assert result.model.metadata["train_names"] == len(TINY_CORPUS)


def test_shipped_checkpoint_meets_the_quality_target():
    model = load_checkpoint(BASE_CHECKPOINT)
    nll = evaluate(model, read_names(val_path()))
    assert nll <= 1.44, f"shipped checkpoint scores {nll:.4f} nats/char on the val file (1.4318 when shipped)"
    assert model.ngram is not None and model.ngram.order == 6
    assert model.metadata["val_loss"] == pytest.approx(nll, abs=1e-6)
    assert model.metadata["train_names"] == len(read_names(train_path()))


def test_shipped_checkpoint_mostly_invents_new_names():
    model = load_checkpoint(BASE_CHECKPOINT)
    known = set(read_names(train_path())) | set(read_names(val_path()))
    samples = [s.name for s in sample_names(model, 1000, rng=np.random.default_rng(0))]
    new = sum(name not in known for name in samples) / len(samples)
    assert new >= 0.97, f"only {new:.1%} of 1 000 default samples are in neither the train nor the val file"


def test_a_cancelled_ensemble_skips_its_validation_pass():
    result = train_model(TINY_CORPUS, TINY_CORPUS[:2], ModelConfig(hidden=8), TrainConfig(epochs=5), members=3,
                         should_stop=lambda: True)
    assert result.cancelled and result.epochs_run <= 1 and np.isnan(result.val_loss)
    assert len(result.model.members) == 3
