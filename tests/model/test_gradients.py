"""Backpropagation through time checked against finite differences, in float64.

Every entry of every parameter (E, U, W, b) is checked, for both cells, with dropout off and on
(on: a fixed mask, because every call gets a generator with the same seed). An entry passes when

    |numeric - analytic| <= 1e-6 · max(|numeric|, |analytic|, FLOOR)

i.e. by relative error, except that the tolerance never drops below 1e-6 · FLOOR = 1e-11, about
30 times the error of the finite differences themselves (~3e-13 here). The sizes, weights and
names are chosen so that this is a relative check for almost every entry: at least 97 % of
the entries that are not zero by construction are above FLOOR (the rest are checked to 1e-11).
The last tests inject wrong backward passes (the output layer's gradient taken before dropout,
the mask left off dLoss/dh, wrong forget- and input-gate terms, a wrong tanh') and show the check fails.
"""
from __future__ import annotations

import inspect
import sys
import types
from functools import lru_cache

import numpy as np
import pytest

import model.cells
import model.network
from model import CharModel, ModelConfig
from model.training import clip_gradients
from model.vocab import END_ID, encode_batch

# Every letter appears before the last position of some name, so every input row gets a
# gradient through the later steps even where dropout zeroes a unit at the name's end.
NAMES = ["quartzmyxo", "jovbecky", "fizwhelpa", "dungravik", "ayos", "tskeq", "xylophab"]
HIDDEN, DROPOUT, MASK_SEED = 5, 0.5, 7
FLOOR = 1e-5
CASES = [(cell, dropout) for cell in ("rnn", "lstm") for dropout in (0.0, DROPOUT)]


def make_model(cell: str, dropout: float, network=model.network) -> CharModel:
    """Weights drawn here (not by CharModel.create) so the check does not move with the init scheme."""
    rng = np.random.default_rng(1)
    width = model.cells.CELLS[cell].gates * HIDDEN
    shapes = {"E": (28, width), "U": (HIDDEN, width), "W": (HIDDEN, 27), "b": (27,)}
    params = {k: rng.normal(0.0, 0.7, shape) for k, shape in shapes.items()}
    return network.CharModel(network.ModelConfig(cell, HIDDEN, dropout), params)


def loss_and_grads(net: CharModel, want_grads: bool = True):
    rng = np.random.default_rng(MASK_SEED) if net.config.dropout else None
    return net.loss_and_grads(*encode_batch(NAMES), rng=rng, want_grads=want_grads)


@lru_cache(maxsize=None)
def numerical_gradients(cell: str, dropout: float) -> dict[str, np.ndarray]:
    """dMeanNLL/dparam for every entry by 4-point central differences (error ~h⁴, h = 1e-3).

    Depends only on the forward pass, so it is computed once per case and shared by the
    tests that break the backward pass.
    """
    net, h = make_model(cell, dropout), 1e-3
    count = loss_and_grads(net, want_grads=False)[1]
    grads = {}
    for key, param in net.params.items():
        grad = np.empty_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            losses = []
            for step in (2, 1, -1, -2):
                param[index] = saved + step * h
                losses.append(loss_and_grads(net, want_grads=False)[0])
            param[index] = saved
            grad[index] = (8 * (losses[1] - losses[2]) - (losses[0] - losses[3])) / (12 * h) / count
        grads[key] = grad
    return grads


def gradient_errors(analytic: dict[str, np.ndarray], numeric: dict[str, np.ndarray]) -> dict[str, float]:
    """Per parameter, the worst |numeric - analytic| / max(|numeric|, |analytic|, FLOOR)."""
    return {key: float((np.abs(numeric[key] - analytic[key])
                        / np.maximum(np.maximum(np.abs(numeric[key]), np.abs(analytic[key])), FLOOR)).max())
            for key in numeric}


def structural_zeros(cell: str) -> dict[str, np.ndarray]:
    """Entries whose gradient is zero by construction, so no check can say anything about them:
    the E row of the end symbol (never an input) and, in the LSTM, the start row's forget-gate
    columns (they multiply c_{-1} = 0)."""
    width = model.cells.CELLS[cell].gates * HIDDEN
    zeros = {"E": np.zeros((28, width), bool), "U": np.zeros((HIDDEN, width), bool),
             "W": np.zeros((HIDDEN, 27), bool), "b": np.zeros(27, bool)}
    zeros["E"][END_ID] = True
    if cell == "lstm":
        zeros["E"][-1, HIDDEN : 2 * HIDDEN] = True
    return zeros


@pytest.mark.parametrize("cell, dropout", CASES)
def test_every_gradient_entry_matches_finite_differences(cell, dropout):
    numeric = numerical_gradients(cell, dropout)
    analytic = loss_and_grads(make_model(cell, dropout))[2]
    errors = gradient_errors(analytic, numeric)
    assert max(errors.values()) < 1e-6, errors

    zeros = structural_zeros(cell)
    for key, where in zeros.items():
        assert np.all(analytic[key][where] == 0.0), f"d{key} should be exactly zero where nothing flows"
    checkable = np.concatenate([np.abs(numeric[k][~zeros[k]]).ravel() for k in numeric])
    assert np.mean(checkable >= FLOOR) >= 0.97, "too many tiny entries: the check would be mostly absolute"


def with_bug(module: types.ModuleType, old: str, new: str, monkeypatch) -> types.ModuleType:
    """A copy of ``module`` whose source has ``old`` replaced by ``new`` (exactly once)."""
    source = inspect.getsource(module)
    assert source.count(old) == 1, f"{module.__name__} no longer contains {old!r}: update this test's bug"
    copy = types.ModuleType(f"{module.__name__}_with_bug")
    copy.__package__ = module.__package__  # its relative imports resolve to the real package
    monkeypatch.setitem(sys.modules, copy.__name__, copy)  # dataclasses look their module up here
    exec(compile(source.replace(old, new), f"<{module.__name__} with a bug>", "exec"), copy.__dict__)
    return copy


BUGS = {
    "output-layer gradient from the hidden states before dropout":
        (model.network, 'grads = {"W": h_out @ dlogits.T', 'grads = {"W": h @ dlogits.T', ["W"]),
    "dLoss/dh not passed back through the dropout mask":
        (model.network, "dh *= keep\n", "pass\n", ["E", "U"]),
    "LSTM cell-state gradient carried back through step t's forget gate instead of step t + 1's":
        (model.cells, "np.copyto(carry[:-1, :H], f[1:])", "np.copyto(carry[:-1, :H], f[:-1])", ["E", "U"]),
    "LSTM input- and forget-gate derivatives without their g and c_{t-1} factors":
        (model.cells, "K_if *= prods\n", "K_if *= gates[:, H : 3 * H]\n", ["E", "U"]),
    "RNN tanh' from the previous step's state":
        (model.cells, "h = stack[1:, :, :hidden]\n", "h = stack[:-1, :, :hidden]\n", ["E", "U"]),
}


def buggy_model(bug: str, cell: str, dropout: float, monkeypatch) -> CharModel:
    module, old, new, _ = BUGS[bug]
    patched = with_bug(module, old, new, monkeypatch)
    if module is model.network:
        return make_model(cell, dropout, network=patched)
    net = make_model(cell, dropout)
    net.cell = patched.CELLS[cell]
    return net


@pytest.mark.parametrize("bug, cell", [
    ("output-layer gradient from the hidden states before dropout", "lstm"),
    ("output-layer gradient from the hidden states before dropout", "rnn"),
    ("dLoss/dh not passed back through the dropout mask", "lstm"),
    ("LSTM cell-state gradient carried back through step t's forget gate instead of step t + 1's", "lstm"),
    ("LSTM input- and forget-gate derivatives without their g and c_{t-1} factors", "lstm"),
    ("RNN tanh' from the previous step's state", "rnn"),
])
def test_the_check_catches_a_wrong_backward_pass(bug, cell, monkeypatch):
    errors = gradient_errors(loss_and_grads(buggy_model(bug, cell, DROPOUT, monkeypatch))[2],
                             numerical_gradients(cell, DROPOUT))
    for key in BUGS[bug][3]:
        assert errors[key] > 1e-2, f"the check missed '{bug}' in d{key}: {errors}"


def test_the_dropout_bug_is_invisible_without_dropout_which_is_why_both_are_checked(monkeypatch):
    bug = "output-layer gradient from the hidden states before dropout"
    errors = gradient_errors(loss_and_grads(buggy_model(bug, "lstm", 0.0, monkeypatch))[2],
                             numerical_gradients("lstm", 0.0))
    assert max(errors.values()) < 1e-6


def test_padding_does_not_change_the_loss_or_gradients():
    net = CharModel.create(ModelConfig(cell="rnn", hidden=8), np.random.default_rng(0), dtype=np.float64)
    alone = net.loss_and_grads(*encode_batch(["abc"]))
    padded_inputs, padded_targets, padded_mask = encode_batch(["abc", "abcdefghij"])
    together = net.loss_and_grads(padded_inputs[:1], padded_targets[:1], padded_mask[:1])
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


def test_the_dropout_mask_is_the_same_draw_in_either_layout():
    """The RNN's states come as a transposed (T·B, H) matrix and its mask is laid out to match;
    the multipliers must be the same draw as the column layout's, so seeded runs are unchanged."""
    net = CharModel.create(ModelConfig(cell="rnn", hidden=8, dropout=0.3), np.random.default_rng(0))
    cols = net._dropout_mask((5, 4), np.random.default_rng(1))
    rows = net._dropout_mask((5, 4), np.random.default_rng(1), rows_major=True)
    assert cols.flags.c_contiguous and rows.T.flags.c_contiguous
    np.testing.assert_array_equal(cols, rows)
