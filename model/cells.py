"""Recurrent cells with hand-written backpropagation through time.

Training runs *feature-major*: a step's hidden state is an (H, B) matrix, one column per name,
and the recurrence is a (G·H, ·) x (·, B) product. Every gate is then a contiguous block of
rows, and the dozen small ufuncs a step are about twice as fast on contiguous blocks as on the
strided column slices of a (B, 4H) array; at 64 hidden units that elementwise work, not the
matmul, bounds training speed.

Inputs are one-hot letters. Rather than gathering their rows of ``E`` and adding them to
``h U`` every step, each step's matmul takes the state stacked on the step's one-hot input,
[h; x] (H + 28 rows), against [U^T | E^T]: one product gives the whole pre-activation, and
after the loop one product of the same stack with the pre-activation gradients gives dU and dE
together (a one-hot times a matrix is exactly the row lookup, and its gradient the row sums).

A training forward returns the hidden states as one (H, T·B) matrix (columns in (step, name)
order), which the output layer multiplies in one product; its backward takes dLoss/dh in the
same layout. Inference (:func:`rnn_step`, :func:`lstm_step`) stays batch-major with prepared
weights: the sampler's batches are small and it stacks ensemble members on a leading axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .workspace import Workspace

State = tuple[np.ndarray, ...]


# ---------------------------------------------------------------- shared by both cells

def _starts_at_zero(state: State) -> bool:
    """True when every state array is zero (always so in training): step 0 then needs no h U."""
    return not any(s.any() for s in state)


def _stacked_inputs(ids: np.ndarray, h0: np.ndarray, rows: int, ws: Workspace) -> np.ndarray:
    """The (H + rows, T + 1, B) stack [h; x]: block t holds the state before step t over the
    one-hot of step t's input (id -1 is the last row, the start). The forward fills h in."""
    steps, batch = ids.shape
    hidden = h0.shape[1]
    stack = ws.empty("stack", (hidden + rows, steps + 1, batch), h0.dtype)
    stack[:hidden, 0] = h0.T
    stack[hidden:].fill(0)
    stack[hidden + ids % rows, np.arange(steps)[:, None], np.arange(batch)] = 1.0
    return stack


def _joint_weights(U: np.ndarray, E: np.ndarray) -> np.ndarray:
    """[U^T | E^T] (G·H, H + rows), contiguous: the left factor of every step's product."""
    joint = np.empty((U.shape[1], U.shape[0] + E.shape[0]), dtype=U.dtype)
    joint[:, : U.shape[0]] = U.T
    joint[:, U.shape[0] :] = E.T
    return joint


def _weight_grads(stack: np.ndarray, da: np.ndarray, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU from the pre-activation gradients ``da`` (G·H, T, B), as ONE product.

    The sum over steps of [h_{t-1}; x_t] da_t^T is one (H + rows, T·B) x (T·B, G·H) product,
    which runs near the BLAS peak, unlike T small ones inside the loop. Its top H rows are dU
    and the rest dE (fresh arrays, not workspace views).
    """
    width, steps, _ = da.shape
    joint = stack[:, :steps].reshape(stack.shape[0], -1) @ da.reshape(width, -1).T
    return joint[hidden:], joint[:hidden]


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
    stack = _stacked_inputs(ids, state[0], E.shape[0], ws)
    weights = _joint_weights(U, E)
    first = hidden if _starts_at_zero(state) else 0  # h_0 = 0: step 0 reads only its input
    z = ws.empty("z", (hidden, batch), U.dtype)
    for t in range(steps):
        np.matmul(weights[:, first:], stack[first:, t], out=z)
        np.tanh(z, out=stack[:hidden, t + 1])
        first = 0
    return stack[:hidden, 1:].reshape(hidden, -1), (U, stack, ws)


def rnn_backward(dh_cols: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU given dLoss/dh (H, T·B) for the states :func:`rnn_forward` returned."""
    U, stack, ws = cache
    hidden, steps, batch = U.shape[0], stack.shape[1] - 1, stack.shape[2]
    dh = dh_cols.reshape(hidden, steps, batch)
    h = stack[:hidden, 1:]
    # tanh' = 1 - h^2 for every step at once, so the loop only multiplies by it (in place).
    da = ws.empty("da", (hidden, steps, batch), U.dtype)
    np.multiply(h, h, out=da)
    np.subtract(1.0, da, out=da)
    carry = ws.zeros("carry", (hidden, batch), U.dtype)  # dLoss/dh_t arriving from step t + 1
    for t in range(steps - 1, -1, -1):
        carry += dh[:, t]
        da[:, t] *= carry
        if t:  # nobody needs the start state's gradient
            np.matmul(U, da[:, t], out=carry)
    return _weight_grads(stack, da, hidden)


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
    """All steps of an LSTM: one (4H, H + 28) x (H + 28, B) matmul a step, everything else in place.

    sigmoid(z) = 0.5 · tanh(z / 2) + 0.5, so the sigmoid gates' weights are halved once per
    batch (exact in binary floating point) and one tanh covers all four gates, followed by one
    affine fix-up of the sigmoid block. Every per-step array is preallocated, in ``ws`` when
    given (valid until its next use).
    """
    ws = ws if ws is not None else Workspace()
    steps, batch = ids.shape
    hidden, dtype = U.shape[0], U.dtype
    perm = _gate_permutation(hidden)
    scale = np.ones(4 * hidden, dtype=dtype)
    scale[: 3 * hidden] = 0.5
    stack = _stacked_inputs(ids, state[0], E.shape[0], ws)
    weights = _joint_weights(U[:, perm] * scale, E[:, perm] * scale)
    gates = ws.empty("gates", (steps, 4 * hidden, batch), dtype)  # per step: o, i, f, g blocks
    c = ws.empty("c", (steps + 1, hidden, batch), dtype)
    tanh_c = ws.empty("tanh_c", (steps, hidden, batch), dtype)
    c[0] = state[1].T
    ig = ws.empty("ig", (hidden, batch), dtype)
    o_, i_, f_, g_, sig = (slice(0, hidden), slice(hidden, 2 * hidden), slice(2 * hidden, 3 * hidden),
                           slice(3 * hidden, None), slice(0, 3 * hidden))
    first = hidden if _starts_at_zero(state) else 0  # h_0 = 0: step 0 reads only its input
    for t in range(steps):
        z = gates[t]
        np.matmul(weights[:, first:], stack[first:, t], out=z)
        first = 0
        np.tanh(z, out=z)
        z[sig] *= 0.5
        z[sig] += 0.5
        np.multiply(z[f_], c[t], out=c[t + 1])  # c_t = f c_{t-1} + i g
        np.multiply(z[i_], z[g_], out=ig)
        c[t + 1] += ig
        np.tanh(c[t + 1], out=tanh_c[t])
        np.multiply(z[o_], tanh_c[t], out=stack[:hidden, t + 1])  # h_t = o tanh(c_t)
    cache = (U[:, perm], perm, stack, c, gates, tanh_c, ws)
    return stack[:hidden, 1:].reshape(hidden, -1), cache


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
    U_train, perm, stack, c, gates, tanh_c, ws = cache
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
    # One transposing copy puts each pre-activation's steps side by side for the weight product.
    da_by_row = ws.empty("da", (four_h, steps, batch), da.dtype)
    np.copyto(da_by_row, da.transpose(1, 0, 2))
    dE, dU = _weight_grads(stack, da_by_row, hidden)
    # Back to the stored gate order. np.take keeps the result C-contiguous (fancy indexing on
    # axis 1 does not, which made every later pass over the gradients 4× slower).
    inverse = np.argsort(perm)
    return np.take(dE, inverse, axis=1), np.take(dU, inverse, axis=1)


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
