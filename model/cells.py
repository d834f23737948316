"""Recurrent cells with hand-written backpropagation through time.

Inputs are one-hot letters, so the input projection is a gather from a table that yields the
cell's pre-activations for every step at once; only the recurrence loops over time.

Training runs *feature-major*: a step's hidden state is an (H, B) matrix, one column per name,
and the recurrence is U^T h. Every gate is then a contiguous block of rows, and the dozen small
ufuncs a step are about twice as fast on contiguous blocks as on the strided column slices of a
(B, 4H) array; at 64 hidden units that elementwise work, not the matmul, bounds training speed.
A training forward returns the hidden states as one (H, T·B) matrix (columns in (step, name)
order), which the output layer multiplies in one product, and its backward takes dLoss/dh in
the same layout.

Inference (:func:`rnn_step`, :func:`lstm_step`) stays batch-major with prepared weights: the
sampler's batches are small and it stacks ensemble members on a leading axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .workspace import Workspace

State = tuple[np.ndarray, ...]


# ---------------------------------------------------------------- shared by both cells

def _starts_at_zero(state: State) -> bool:
    """True when every state array is zero (always so in training): step 0 then needs no matmul."""
    return not any(s.any() for s in state)


def _input_columns(E: np.ndarray, ids: np.ndarray, ws: Workspace) -> np.ndarray:
    """Pre-activations from the inputs for all steps, (T, G·H, B): column b of step t is E[ids[t, b]].

    A one-hot input times a weight matrix is a row lookup (id -1 picks the last row, the start).
    Gathering whole rows then transposing each step in one copy is 3× faster than gathering
    columns directly (``np.take`` along axis 1 copies one element at a time).
    """
    steps, batch = ids.shape
    rows = ws.empty("input_rows", (steps, batch, E.shape[1]), E.dtype)
    np.take(E, ids, axis=0, out=rows)
    columns = ws.empty("gates", (steps, E.shape[1], batch), E.dtype)
    np.copyto(columns, rows.transpose(0, 2, 1))
    return columns


def _weight_grads(h: np.ndarray, da: np.ndarray, ids: np.ndarray, rows: int, zero_start: bool,
                  ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU from the pre-activation gradients ``da`` (G·H, T, B), each as ONE product.

    ``h`` (H, T + 1, B) holds the state before every step. dU = sum over steps of h_{t-1} da_t^T
    as one (H, T·B) x (T·B, G·H) product runs near the BLAS peak, unlike T small ones inside
    the loop; a zero start state contributes nothing, so its block is left out. dE sums da by
    input id, as a product with a one-hot (T·B, rows) matrix: much faster than ``np.add.at``.
    """
    width, steps, batch = da.shape
    first = 1 if zero_start else 0
    flat = da.reshape(width, steps * batch)
    dU = h[:, first:steps].reshape(h.shape[0], -1) @ flat[:, first * batch :].T
    ids = ids.reshape(-1)
    onehot = ws.zeros("onehot", (ids.size, rows), da.dtype)
    onehot[np.arange(ids.size), ids] = 1.0
    return onehot.T @ flat.T, dU


# ---------------------------------------------------------------- vanilla tanh RNN

def rnn_forward(ids: np.ndarray, E: np.ndarray, U: np.ndarray, state: State,
                ws: Workspace | None = None) -> tuple[np.ndarray, tuple]:
    """h_t = tanh(E[x_t] + h_{t-1} U) for every step of ``ids`` (T, B).

    Returns the states after every step as one (H, T·B) matrix, and a cache for the backward.
    Both live in ``ws`` when given (valid until its next use), else in fresh arrays.
    """
    ws = ws if ws is not None else Workspace()
    steps, batch = ids.shape
    hidden = U.shape[0]
    pre = _input_columns(E, ids, ws)
    h = ws.empty("h", (hidden, steps + 1, batch), U.dtype)  # h[:, t] is the state before step t
    h[:, 0] = state[0].T
    zero_start = _starts_at_zero(state)
    UT = np.ascontiguousarray(U.T)
    hU = ws.empty("hU", (hidden, batch), U.dtype)
    for t in range(steps):
        z = pre[t]
        if t or not zero_start:
            np.matmul(UT, h[:, t], out=hU)
            z += hU
        np.tanh(z, out=h[:, t + 1])
    return h[:, 1:].reshape(hidden, -1), (ids, E.shape[0], U, h, zero_start, ws)


def rnn_backward(dh_cols: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU given dLoss/dh (H, T·B) for the states :func:`rnn_forward` returned."""
    ids, rows, U, h, zero_start, ws = cache
    hidden, steps, batch = h.shape[0], h.shape[1] - 1, h.shape[2]
    dh = dh_cols.reshape(hidden, steps, batch)
    # tanh' = 1 - h^2 for every step at once, so the loop only multiplies by it (in place).
    da = ws.empty("da", (hidden, steps, batch), U.dtype)
    np.multiply(h[:, 1:], h[:, 1:], out=da)
    np.subtract(1.0, da, out=da)
    carry = ws.zeros("carry", (hidden, batch), U.dtype)  # dLoss/dh_t arriving from step t + 1
    for t in range(steps - 1, -1, -1):
        carry += dh[:, t]
        da[:, t] *= carry
        if t:  # nobody needs the start state's gradient
            np.matmul(U, da[:, t], out=carry)
    return _weight_grads(h, da, ids, rows, zero_start, ws)


def rnn_prepare(E: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return E, U


def rnn_step(a: np.ndarray, U: np.ndarray, state: State) -> State:
    """One inference step (any leading batch axes); ``a`` is a fresh gather, reused as output."""
    h = np.matmul(state[0], U)
    h += a
    return (np.tanh(h, out=h),)


# ---------------------------------------------------------------- LSTM (gates i, f, g, o)

# Training keeps the gates internally in the order (o, i, f, g): then the three sigmoid gates
# are one block (one affine fix-up after a shared tanh), and in the backward pass the three
# gates driven by dc (i, f, g) are one block and the one driven by dh (o) another.
_TRAIN_ORDER = (3, 0, 1, 2)


def _gate_permutation(hidden: int) -> np.ndarray:
    """Column indices taking stored (i, f, g, o) to the training order (o, i, f, g)."""
    return np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in _TRAIN_ORDER])


def lstm_forward(ids: np.ndarray, E: np.ndarray, U: np.ndarray, state: State,
                 ws: Workspace | None = None) -> tuple[np.ndarray, tuple]:
    """All steps of an LSTM: one (4H, H) x (H, B) matmul a step, everything else in place.

    sigmoid(z) = 0.5 · tanh(z / 2) + 0.5, so the sigmoid gates' weights are halved once per
    batch (exact in binary floating point) and one tanh covers all four gates, followed by one
    affine fix-up of the sigmoid block. Every per-step array is preallocated, in ``ws`` when
    given (valid until its next use).
    """
    ws = ws if ws is not None else Workspace()
    steps, batch = ids.shape
    hidden = U.shape[0]
    dtype = U.dtype
    perm = _gate_permutation(hidden)
    scale = np.ones(4 * hidden, dtype=dtype)
    scale[: 3 * hidden] = 0.5
    gates = _input_columns(E[:, perm] * scale, ids, ws)  # (T, 4H, B), blocks o, i, f, g
    UT_scaled = np.ascontiguousarray((U[:, perm] * scale).T)
    h = ws.empty("h", (hidden, steps + 1, batch), dtype)  # h[:, t] is the state before step t
    c = ws.empty("c", (steps + 1, hidden, batch), dtype)
    tanh_c = ws.empty("tanh_c", (steps, hidden, batch), dtype)
    h[:, 0], c[0] = state[0].T, state[1].T
    zero_start = _starts_at_zero(state)
    hU = ws.empty("hU", (4 * hidden, batch), dtype)
    ig = ws.empty("ig", (hidden, batch), dtype)
    o_, i_, f_, g_, sig = (slice(0, hidden), slice(hidden, 2 * hidden), slice(2 * hidden, 3 * hidden),
                           slice(3 * hidden, None), slice(0, 3 * hidden))
    for t in range(steps):
        z = gates[t]
        if t or not zero_start:
            np.matmul(UT_scaled, h[:, t], out=hU)
            z += hU
        np.tanh(z, out=z)
        z[sig] *= 0.5
        z[sig] += 0.5
        np.multiply(z[f_], c[t], out=c[t + 1])  # c_t = f c_{t-1} + i g
        np.multiply(z[i_], z[g_], out=ig)
        c[t + 1] += ig
        np.tanh(c[t + 1], out=tanh_c[t])
        np.multiply(z[o_], tanh_c[t], out=h[:, t + 1])  # h_t = o tanh(c_t)
    cache = (ids, E.shape[0], U[:, perm], perm, h, c, gates, tanh_c, zero_start, ws)
    return h[:, 1:].reshape(hidden, -1), cache


def _lstm_local_derivatives(c: np.ndarray, gates: np.ndarray, tanh_c: np.ndarray,
                            ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """Step-local factors of the LSTM's backward pass, for all steps at once.

    Returns ``K`` (T, 4H, B), blocks (o, i, f, g), with d pre-activation = K · dh for o and
    K · dc for i, f, g: K_o = tanh(c) o(1-o), K_i = g i(1-i), K_f = c_{t-1} f(1-f),
    K_g = i (1-g²); and ``dc_dh`` = o (1 - tanh(c)²), the path from h_t into c_t. Computing
    these over all steps at once leaves the sequential loop only the products with the carried
    gradients.
    """
    hidden = tanh_c.shape[1]
    o, i, f, g = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
    K = ws.empty("K", gates.shape, gates.dtype)
    np.subtract(1.0, gates, out=K)
    K *= gates  # s(1 - s): the sigmoid derivative (the g block is overwritten next)
    K_o, K_i, K_f, K_g = (K[:, k * hidden : (k + 1) * hidden] for k in range(4))
    np.multiply(g, g, out=K_g)
    np.subtract(1.0, K_g, out=K_g)
    K_o *= tanh_c
    K_i *= g
    K_f *= c[:-1]
    K_g *= i
    dc_dh = ws.empty("dc_dh", tanh_c.shape, tanh_c.dtype)
    np.multiply(tanh_c, tanh_c, out=dc_dh)
    np.subtract(1.0, dc_dh, out=dc_dh)
    dc_dh *= o
    return K, dc_dh


def lstm_backward(dh_cols: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU given dLoss/dh (H, T·B); the loop does six in-place ufuncs and one matmul a step."""
    ids, rows, U_train, perm, h, c, gates, tanh_c, zero_start, ws = cache
    steps, four_h, batch = gates.shape
    hidden = four_h // 4
    dh_out = dh_cols.reshape(hidden, steps, batch)
    da, dc_dh = _lstm_local_derivatives(c, gates, tanh_c, ws)
    dh = ws.zeros("dh", (hidden, batch), da.dtype)  # carried dLoss/dh_t, then the total at step t
    dc = ws.zeros("dc", (hidden, batch), da.dtype)
    tmp = ws.empty("tmp", (hidden, batch), da.dtype)
    for t in range(steps - 1, -1, -1):
        dh += dh_out[:, t]
        np.multiply(dh, dc_dh[t], out=tmp)
        dc += tmp
        d = da[t]
        d[:hidden] *= dh  # o
        ifg = d[hidden:].reshape(3, hidden, batch)
        ifg *= dc  # i, f, g
        if t:  # nobody needs the start state's gradient
            dc *= gates[t, 2 * hidden : 3 * hidden]  # through c_{t-1}'s forget gate
            np.matmul(U_train, d, out=dh)
    # One transposing copy puts each pre-activation's steps side by side for the weight products.
    da_by_row = ws.empty("da", (four_h, steps, batch), da.dtype)
    np.copyto(da_by_row, da.transpose(1, 0, 2))
    dE, dU = _weight_grads(h, da_by_row, ids, rows, zero_start, ws)
    inverse = np.argsort(perm)
    return dE[:, inverse], dU[:, inverse]  # back to the stored gate order (fresh arrays)


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
    forward: Callable  # training: (ids, E, U, state) -> (h (H, T·B), cache)
    backward: Callable  # (dLoss/dh (H, T·B), cache) -> (dE, dU)
    prepare: Callable  # inference: weights rearranged once for the fast step
    step: Callable


CELLS: dict[str, Cell] = {
    "rnn": Cell("rnn", 1, 1, rnn_forward, rnn_backward, rnn_prepare, rnn_step),
    "lstm": Cell("lstm", 4, 2, lstm_forward, lstm_backward, lstm_prepare, lstm_step),
}
