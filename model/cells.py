"""Recurrent cells with hand-written backpropagation through time.

Inputs are one-hot letters, so "input projection" is a row lookup in a table that yields the
cell's pre-activations for every step at once; only the recurrence (``h @ U``) loops over time.
Arrays are time-major, (T, B, ·), so each step's slice is contiguous.

Each cell exposes the same functions, which lets the network, the trainer and the sampler
treat the vanilla RNN (the seed's model, the default) and the LSTM alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

State = tuple[np.ndarray, ...]


def _sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    # 0.5 * (1 + tanh(x / 2)) is exact and never overflows, unlike 1 / (1 + exp(-x)).
    out = np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)
    out += 1.0
    out *= 0.5
    return out


# ---------------------------------------------------------------- vanilla tanh RNN

def rnn_forward(a: np.ndarray, U: np.ndarray, state: State) -> tuple[np.ndarray, State, tuple]:
    """h_t = tanh(a_t + h_{t-1} U) for every step; returns all h, the last state, a cache."""
    steps, batch, hidden = a.shape
    hs = np.empty((steps + 1, batch, hidden), dtype=a.dtype)
    hs[0] = state[0]
    for t in range(steps):
        np.matmul(hs[t], U, out=hs[t + 1])
        hs[t + 1] += a[t]
        np.tanh(hs[t + 1], out=hs[t + 1])
    return hs[1:], (hs[-1],), (hs,)


def rnn_backward(dh_out: np.ndarray, U: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Gradients w.r.t. the pre-activations a (all steps) and U, given dLoss/dh for all steps."""
    (hs,) = cache
    steps = dh_out.shape[0]
    da = np.empty_like(dh_out)
    carry = np.zeros_like(dh_out[0])
    for t in range(steps - 1, -1, -1):
        g = da[t]
        np.add(dh_out[t], carry, out=g)
        g *= 1.0 - hs[t + 1] * hs[t + 1]
        np.matmul(g, U.T, out=carry)
    hidden = U.shape[0]
    dU = hs[:-1].reshape(-1, hidden).T @ da.reshape(-1, hidden)
    return da, dU


def rnn_prepare(E: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return E, U


def rnn_step(a: np.ndarray, U: np.ndarray, state: State) -> State:
    """One inference step (any leading batch axes); ``a`` is a fresh gather, reused as output."""
    h = np.matmul(state[0], U)
    h += a
    return (np.tanh(h, out=h),)


# ---------------------------------------------------------------- LSTM (gates i, f, g, o)

def lstm_forward(a: np.ndarray, U: np.ndarray, state: State) -> tuple[np.ndarray, State, tuple]:
    steps, batch, four_h = a.shape
    hidden = four_h // 4
    hs = np.empty((steps + 1, batch, hidden), dtype=a.dtype)
    cs = np.empty_like(hs)
    gates = np.empty_like(a)
    tanh_c = np.empty((steps, batch, hidden), dtype=a.dtype)
    hs[0], cs[0] = state
    for t in range(steps):
        z = gates[t]
        np.matmul(hs[t], U, out=z)
        z += a[t]
        _sigmoid(z[:, : 2 * hidden], out=z[:, : 2 * hidden])
        np.tanh(z[:, 2 * hidden : 3 * hidden], out=z[:, 2 * hidden : 3 * hidden])
        _sigmoid(z[:, 3 * hidden :], out=z[:, 3 * hidden :])
        i, f, g, o = z[:, :hidden], z[:, hidden : 2 * hidden], z[:, 2 * hidden : 3 * hidden], z[:, 3 * hidden :]
        np.multiply(f, cs[t], out=cs[t + 1])
        cs[t + 1] += i * g
        np.tanh(cs[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=hs[t + 1])
    return hs[1:], (hs[-1], cs[-1]), (hs, cs, gates, tanh_c)


def lstm_backward(dh_out: np.ndarray, U: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    hs, cs, gates, tanh_c = cache
    steps, batch, hidden = dh_out.shape
    da = np.empty_like(gates)
    dh = np.zeros_like(dh_out[0])
    dc = np.zeros_like(dh)
    for t in range(steps - 1, -1, -1):
        i, f, g, o = (gates[t][:, k * hidden : (k + 1) * hidden] for k in range(4))
        dh += dh_out[t]
        tc = tanh_c[t]
        dc += dh * o * (1.0 - tc * tc)
        d = da[t]
        d[:, :hidden] = dc * g * i * (1.0 - i)
        d[:, hidden : 2 * hidden] = dc * cs[t] * f * (1.0 - f)
        d[:, 2 * hidden : 3 * hidden] = dc * i * (1.0 - g * g)
        d[:, 3 * hidden :] = dh * tc * o * (1.0 - o)
        dc *= f
        np.matmul(d, U.T, out=dh)
    dU = hs[:-1].reshape(-1, hidden).T @ da.reshape(-1, 4 * hidden)
    return da, dU


def lstm_prepare(E: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder gates to (i, f, o, g) and halve the sigmoid gates' columns for :func:`lstm_step`.

    With sigmoid(x) = (1 + tanh(x / 2)) / 2, one tanh over all four gates then an affine
    fix-up of the first three replaces four separate activation passes.
    """
    hidden = U.shape[-1] // 4
    i, f, g, o = (slice(k * hidden, (k + 1) * hidden) for k in range(4))

    def reorder(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[..., i] * 0.5, x[..., f] * 0.5, x[..., o] * 0.5, x[..., g]], axis=-1)

    return reorder(E), reorder(U)


def lstm_step(a: np.ndarray, U: np.ndarray, state: State) -> State:
    """One inference step with prepared weights (any leading batch axes, e.g. ensemble members)."""
    h, c = state
    hidden = h.shape[-1]
    z = np.matmul(h, U)
    z += a
    np.tanh(z, out=z)
    sig = z[..., : 3 * hidden]
    sig *= 0.5
    sig += 0.5
    c = c * z[..., hidden : 2 * hidden]
    c += z[..., :hidden] * z[..., 3 * hidden :]
    h = np.tanh(c)
    h *= z[..., 2 * hidden : 3 * hidden]
    return (h, c)


@dataclass(frozen=True)
class Cell:
    """One recurrent cell: how wide its pre-activations are and how it runs."""

    name: str
    gates: int  # pre-activation width = gates * hidden
    states: int  # number of state arrays (h; or h and c)
    forward: Callable  # training: all steps, keeps a cache for backward
    backward: Callable
    prepare: Callable  # inference: weights rearranged once for the fast step
    step: Callable


CELLS: dict[str, Cell] = {
    "rnn": Cell("rnn", 1, 1, rnn_forward, rnn_backward, rnn_prepare, rnn_step),
    "lstm": Cell("lstm", 4, 2, lstm_forward, lstm_backward, lstm_prepare, lstm_step),
}
