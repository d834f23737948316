"""Backpropagation through time checked against central differences, in float64."""
import numpy as np
import pytest

from model import CharModel, ModelConfig
from model.training import clip_gradients
from model.vocab import encode_batch

NAMES = ["abc", "bd", "zyxw", "aa"]


def numerical_gradients(model: CharModel, inputs, targets, mask, eps: float = 1e-6):
    grads = {}
    _, count, _ = model.loss_and_grads(inputs, targets, mask, want_grads=False)
    for key, param in model.params.items():
        grad = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + eps
            plus = model.loss_and_grads(inputs, targets, mask, want_grads=False)[0]
            param[index] = saved - eps
            minus = model.loss_and_grads(inputs, targets, mask, want_grads=False)[0]
            param[index] = saved
            grad[index] = (plus - minus) / (2 * eps) / count
        grads[key] = grad
    return grads


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_analytic_gradients_match_numerical(cell):
    model = CharModel.create(ModelConfig(cell=cell, hidden=6), np.random.default_rng(3), dtype=np.float64)
    inputs, targets, mask = encode_batch(NAMES)
    _, _, analytic = model.loss_and_grads(inputs, targets, mask)
    numeric = numerical_gradients(model, inputs, targets, mask)
    for key in model.params:
        scale = np.abs(numeric[key]).max() + np.abs(analytic[key]).max()
        rel = np.abs(numeric[key] - analytic[key]).max() / scale
        assert rel < 1e-6, f"{cell} d{key}: relative error {rel:.2e}"


def test_dropout_gradients_match_numerical_for_a_fixed_mask():
    model = CharModel.create(ModelConfig(cell="lstm", hidden=5, dropout=0.5), np.random.default_rng(1),
                             dtype=np.float64)
    inputs, targets, mask = encode_batch(NAMES)

    def loss_with_fixed_mask(want_grads):
        return model.loss_and_grads(inputs, targets, mask, rng=np.random.default_rng(7), want_grads=want_grads)

    _, count, analytic = loss_with_fixed_mask(True)
    key, index, eps = "U", (2, 3), 1e-6
    saved = model.params[key][index]
    model.params[key][index] = saved + eps
    plus = loss_with_fixed_mask(False)[0]
    model.params[key][index] = saved - eps
    minus = loss_with_fixed_mask(False)[0]
    model.params[key][index] = saved
    assert abs((plus - minus) / (2 * eps) / count - analytic[key][index]) < 1e-7


def test_padding_does_not_change_the_loss_or_gradients():
    model = CharModel.create(ModelConfig(cell="rnn", hidden=8), np.random.default_rng(0), dtype=np.float64)
    alone = model.loss_and_grads(*encode_batch(["abc"]))
    padded_inputs, padded_targets, padded_mask = encode_batch(["abc", "abcdefghij"])
    together = model.loss_and_grads(padded_inputs[:1], padded_targets[:1], padded_mask[:1])
    assert alone[0] == pytest.approx(together[0]) and alone[1] == together[1]
    for key in alone[2]:
        np.testing.assert_allclose(alone[2][key], together[2][key], atol=1e-12)


def test_value_clipping_bounds_every_entry_and_norm_clipping_bounds_the_norm():
    grads = {"a": np.array([10.0, -7.0, 0.5]), "b": np.array([[3.0, -9.0]])}
    clip_gradients(grads, 5.0, "value")
    assert grads["a"].tolist() == [5.0, -5.0, 0.5] and grads["b"].tolist() == [[3.0, -5.0]]
    grads = {"a": np.array([30.0, 40.0])}
    clip_gradients(grads, 5.0, "norm")
    assert np.linalg.norm(grads["a"]) == pytest.approx(5.0)
