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


# ---------------------------------------------------------------- shared by both cells

def _starts_at_zero(state: State) -> bool:
    """True when every state array is zero (always so in training): step 0 then needs no matmul."""
    return not any(s.any() for s in state)


def _recurrent_grad(hs: np.ndarray, da: np.ndarray, zero_start: bool) -> np.ndarray:
    """dU = sum over steps of h_{t-1}^T da_t, as ONE (H, T·B) x (T·B, G·H) product after the loop.

    One big product runs near the BLAS peak, unlike T small ones inside the loop. A zero start
    state contributes nothing, so its block is left out (one step's worth of FLOPs saved).
    """
    first = 1 if zero_start else 0
    hidden, width = hs.shape[-1], da.shape[-1]
    return hs[first:-1].reshape(-1, hidden).T @ da[first:].reshape(-1, width)


# ---------------------------------------------------------------- vanilla tanh RNN

def rnn_forward(a: np.ndarray, U: np.ndarray, state: State) -> tuple[np.ndarray, State, tuple]:
    """h_t = tanh(a_t + h_{t-1} U) for every step; returns all h, the last state, a cache."""
    steps, batch, hidden = a.shape
    hs = np.empty((steps + 1, batch, hidden), dtype=a.dtype)
    hs[0] = state[0]
    zero_start = _starts_at_zero(state)
    for t in range(steps):
        if t or not zero_start:
            np.matmul(hs[t], U, out=hs[t + 1])
            hs[t + 1] += a[t]
        else:
            hs[t + 1] = a[t]
        np.tanh(hs[t + 1], out=hs[t + 1])
    return hs[1:], (hs[-1],), (hs, zero_start)


def rnn_backward(dh_out: np.ndarray, U: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Gradients w.r.t. the pre-activations a (all steps) and U, given dLoss/dh for all steps."""
    hs, zero_start = cache
    steps = dh_out.shape[0]
    # tanh' = 1 - h^2 for every step at once, so the loop only multiplies by it (in place).
    da = np.multiply(hs[1:], hs[1:])
    np.subtract(1.0, da, out=da)
    carry = np.zeros_like(dh_out[0])  # dLoss/dh_t arriving from step t + 1
    for t in range(steps - 1, -1, -1):
        np.add(dh_out[t], carry, out=carry)
        da[t] *= carry
        if t:  # nobody needs the start state's gradient
            np.matmul(da[t], U.T, out=carry)
    return da, _recurrent_grad(hs, da, zero_start)


def rnn_prepare(E: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return E, U


def rnn_step(a: np.ndarray, U: np.ndarray, state: State) -> State:
    """One inference step (any leading batch axes); ``a`` is a fresh gather, reused as output."""
    h = np.matmul(state[0], U)
    h += a
    return (np.tanh(h, out=h),)


# ---------------------------------------------------------------- LSTM (gates i, f, g, o)

def _gate_affine(hidden: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Per-column scale and shift that turn tanh(scale · z) into the gates (i, f, g, o).

    sigmoid(z) = 0.5 · tanh(z / 2) + 0.5, so the sigmoid columns get scale 0.5 and shift 0.5 and
    the g column scale 1 and shift 0: one tanh and two affine passes over all four gates replace
    four separate activation passes per step. Scaling by 0.5 is exact in binary floating point.
    """
    half, one, zero = np.full(hidden, 0.5), np.ones(hidden), np.zeros(hidden)
    scale = np.concatenate([half, half, one, half]).astype(dtype)
    shift = np.concatenate([half, half, zero, half]).astype(dtype)
    return scale, shift


def lstm_forward(a: np.ndarray, U: np.ndarray, state: State) -> tuple[np.ndarray, State, tuple]:
    """All steps of an LSTM with gates laid out (i, f, g, o): one (B, H) x (H, 4H) matmul a step.

    Every per-step array is preallocated and written with ``out=``, so the loop allocates nothing.
    """
    steps, batch, four_h = a.shape
    hidden = four_h // 4
    hs = np.empty((steps + 1, batch, hidden), dtype=a.dtype)
    cs = np.empty_like(hs)
    tanh_c = np.empty((steps, batch, hidden), dtype=a.dtype)
    hs[0], cs[0] = state
    zero_start = _starts_at_zero(state)
    scale, shift = _gate_affine(hidden, a.dtype)
    gates = np.multiply(a, scale)  # the input part of tanh's argument, for all steps at once
    U_scaled = U * scale
    hU = np.empty((batch, four_h), dtype=a.dtype)
    ig = np.empty((batch, hidden), dtype=a.dtype)
    i_, f_, g_, o_ = (slice(k * hidden, (k + 1) * hidden) for k in range(4))
    for t in range(steps):
        z = gates[t]
        if t or not zero_start:
            np.matmul(hs[t], U_scaled, out=hU)
            z += hU
        np.tanh(z, out=z)
        z *= scale
        z += shift
        np.multiply(z[:, f_], cs[t], out=cs[t + 1])  # c_t = f c_{t-1} + i g
        np.multiply(z[:, i_], z[:, g_], out=ig)
        cs[t + 1] += ig
        np.tanh(cs[t + 1], out=tanh_c[t])
        np.multiply(z[:, o_], tanh_c[t], out=hs[t + 1])  # h_t = o tanh(c_t)
    return hs[1:], (hs[-1], cs[-1]), (hs, cs, gates, tanh_c, zero_start)


def _lstm_local_derivatives(cs: np.ndarray, gates: np.ndarray, tanh_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step-local factors of the LSTM's backward pass, for all steps at once.

    Returns ``K`` (T, B, 4H) with d pre-activation = K · (dc for i, f, g; dh for o):
    K_i = g i(1-i), K_f = c_{t-1} f(1-f), K_g = i (1-g²), K_o = tanh(c) o(1-o); and
    ``dc_dh`` = o (1 - tanh(c)²), the path from h_t into c_t. Vectorising these over time
    leaves the sequential loop only the multiplications that depend on the carried gradient.
    """
    hidden = tanh_c.shape[-1]
    i, f, g, o = (gates[..., k * hidden : (k + 1) * hidden] for k in range(4))
    K = np.subtract(1.0, gates)
    K *= gates  # s(1 - s): the sigmoid derivative (the g column is overwritten next)
    np.multiply(g, g, out=K[..., 2 * hidden : 3 * hidden])
    np.subtract(1.0, K[..., 2 * hidden : 3 * hidden], out=K[..., 2 * hidden : 3 * hidden])
    K[..., :hidden] *= g
    K[..., hidden : 2 * hidden] *= cs[:-1]
    K[..., 2 * hidden : 3 * hidden] *= i
    K[..., 3 * hidden :] *= tanh_c
    dc_dh = np.multiply(tanh_c, tanh_c)
    np.subtract(1.0, dc_dh, out=dc_dh)
    dc_dh *= o
    return K, dc_dh


def lstm_backward(dh_out: np.ndarray, U: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Backpropagation through time; the loop does five in-place ufuncs and one matmul a step."""
    hs, cs, gates, tanh_c, zero_start = cache
    steps, batch, hidden = dh_out.shape
    da, dc_dh = _lstm_local_derivatives(cs, gates, tanh_c)
    forget = gates[..., hidden : 2 * hidden]
    dh = np.zeros_like(dh_out[0])  # carried dLoss/dh_t, then the total at step t
    dc = np.zeros_like(dh)
    tmp = np.empty_like(dh)
    for t in range(steps - 1, -1, -1):
        dh += dh_out[t]
        np.multiply(dh, dc_dh[t], out=tmp)
        dc += tmp
        d = da[t]
        ifg = d[:, : 3 * hidden].reshape(batch, 3, hidden)  # i, f, g all scale with dc
        np.multiply(ifg, dc[:, None, :], out=ifg)
        d[:, 3 * hidden :] *= dh
        if t:  # nobody needs the start state's gradient
            dc *= forget[t]
            np.matmul(d, U.T, out=dh)
    return da, _recurrent_grad(hs, da, zero_start)


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
