"""The training cells against a plain loop written the textbook way, from any start state.

The gradient checks in test_gradients.py go through the whole model, which always starts from
the zero state; here the fast cells (stacked inputs, reordered and halved gates, fused
products, the [dc; dh] carry) are compared with a direct transcription of the equations, also
from a non-zero start state, and their backward pass with finite differences of that loop.
"""
from __future__ import annotations

import numpy as np
import pytest

from model import cells
from model.cells import CELLS
from model.workspace import Workspace

HIDDEN, STEPS, BATCH = 3, 5, 2


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def reference(cell: str, ids: np.ndarray, E: np.ndarray, U: np.ndarray, state: tuple) -> np.ndarray:
    """Hidden states (T, B, H) by the textbook equations, stored gate order (i, f, g, o)."""
    h, c = state[0], state[-1]
    out = []
    for t in range(ids.shape[0]):
        z = E[ids[t]] + h @ U  # id -1 picks the last row, the start symbol
        if cell == "rnn":
            h = np.tanh(z)
        else:
            i, f, g, o = np.split(z, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def case(cell: str, seed: int, zero_state: bool):
    rng = np.random.default_rng(seed)
    width = CELLS[cell].gates * HIDDEN
    E, U = rng.normal(0, 0.8, (28, width)), rng.normal(0, 0.8, (HIDDEN, width))
    ids = rng.integers(0, 27, (STEPS, BATCH))
    ids[0] = -1
    state = tuple(np.zeros((BATCH, HIDDEN)) if zero_state else rng.normal(0, 0.8, (BATCH, HIDDEN))
                  for _ in range(CELLS[cell].states))
    return ids, E, U, state


@pytest.fixture(params=["transposed view", "contiguous copy"])
def step_weights(request, monkeypatch):
    """The LSTM reads its step weights either way, by the product's size: test both here."""
    monkeypatch.setattr(cells, "_TRANSPOSE_FREE_WORK", 10**12 if request.param == "transposed view" else 0)


def as_steps(h_cols: np.ndarray) -> np.ndarray:
    """(H, T·B) columns in (step, name) order -> (T, B, H)."""
    return h_cols.reshape(HIDDEN, STEPS, BATCH).transpose(1, 2, 0)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("zero_state", [True, False])
def test_forward_matches_the_textbook_loop(cell, zero_state, step_weights):
    ids, E, U, state = case(cell, 0, zero_state)
    h, _ = CELLS[cell].forward(ids, E, U, state, Workspace())
    np.testing.assert_allclose(as_steps(h), reference(cell, ids, E, U, state), rtol=0, atol=1e-13)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_no_state_is_the_zero_state(cell):
    ids, E, U, zeros = case(cell, 1, zero_state=True)
    weights = np.random.default_rng(2).normal(size=(HIDDEN, STEPS * BATCH))
    given = CELLS[cell].forward(ids, E, U, zeros, Workspace())
    grads_given = CELLS[cell].backward(weights, given[1])
    omitted = CELLS[cell].forward(ids, E, U, None, Workspace())
    grads_omitted = CELLS[cell].backward(weights, omitted[1])
    np.testing.assert_array_equal(given[0], omitted[0])
    for a, b in zip(grads_given, grads_omitted, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("zero_state", [True, False])
def test_backward_matches_finite_differences_of_the_textbook_loop(cell, zero_state, step_weights):
    """d(sum(R · h))/dE and /dU for a fixed random R, every entry, by central differences."""
    ids, E, U, state = case(cell, 3, zero_state)
    R = np.random.default_rng(4).normal(size=(STEPS, BATCH, HIDDEN))
    _, cache = CELLS[cell].forward(ids, E, U, state, Workspace())
    dE, dU = CELLS[cell].backward(R.transpose(2, 0, 1).reshape(HIDDEN, -1), cache)
    step = 1e-6
    for analytic, param in ((dE, E), (dU, U)):
        numeric = np.empty_like(param)
        for index in np.ndindex(param.shape):
            saved = param[index]
            param[index] = saved + step
            up = float((R * reference(cell, ids, E, U, state)).sum())
            param[index] = saved - step
            down = float((R * reference(cell, ids, E, U, state)).sum())
            param[index] = saved
            numeric[index] = (up - down) / (2 * step)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_rnn_backward_takes_dh_in_either_layout():
    """The network hands the RNN dLoss/dh as the transpose of a C-contiguous (T·B, H) matrix (a
    view the backward reads without copying); a C-contiguous (H, T·B) one must give the same."""
    ids, E, U, state = case("rnn", 5, zero_state=False)
    dh = np.random.default_rng(6).normal(size=(HIDDEN, STEPS * BATCH))
    rows = np.ascontiguousarray(dh.T)
    _, cache = CELLS["rnn"].forward(ids, E, U, state, Workspace())
    from_cols = CELLS["rnn"].backward(dh, cache)
    from_rows = CELLS["rnn"].backward(rows.T, cache)
    assert not rows.T.flags.c_contiguous
    for a, b in zip(from_cols, from_rows, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
