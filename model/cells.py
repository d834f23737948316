"""Recurrent cells with hand-written backpropagation through time.

The LSTM trains *feature-major*: a step's hidden state is an (H, B) matrix, one column per name,
and the recurrence is a (G·H, ·) x (·, B) product. Every gate is then a contiguous block of
rows, and the dozen small ufuncs a step are about twice as fast on contiguous blocks as on the
strided column slices of a (B, 4H) array; at 64 hidden units that elementwise work, not the
matmul, bounds training speed.

Inputs are one-hot letters. Rather than gathering their rows of ``E`` and adding them to
``h U`` every step, each step's matmul takes the state stacked on the step's one-hot input,
[h; x] (H + 28 rows), against [U^T | E^T]: one product gives the whole pre-activation, and
after the loop one product of the same stack with the pre-activation gradients gives dU and dE
together (a one-hot times a matrix is exactly the row lookup, and its gradient the row sums).

The vanilla RNN, with no gates to slice, runs batch-major within each step instead (see its
section below). A training forward returns the hidden states as one (H, T·B) matrix (columns in
(step, name) order; for the RNN the transpose of a C-contiguous (T·B, H) one), which the output
layer multiplies in one product; its backward takes dLoss/dh in the same layout.
Inference (:func:`rnn_step`, :func:`lstm_step`) stays batch-major with prepared
weights: the sampler's batches are small and it stacks ensemble members on a leading axis.

The per-step loops call ufuncs with their output passed positionally and their scalars as 0-d
arrays of the working dtype: NumPy spends about 0.3 µs converting a Python float operand, as
long as the arithmetic itself takes on a 64-unit step's gate block, and a keyword ``out`` costs
a little parsing too. The LSTM's backward loop calls ``np.dot`` (its output is C-contiguous,
as ``np.dot`` requires) instead of ``np.matmul``: it reaches BLAS with about 0.35 µs less
overhead (in the RNN's loop, with a transposed U, it ran 2.5 % slower, so that keeps matmul).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .workspace import Workspace

State = tuple[np.ndarray, ...]


# ---------------------------------------------------------------- shared by both cells

def _starts_at_zero(state: State | None) -> bool:
    """True when every state array is zero (None says so without looking, as training does):
    step 0 then needs no h U."""
    return state is None or not any(s.any() for s in state)


def _stacked_inputs(ids: np.ndarray, h0: np.ndarray | None, hidden: int, rows: int, dtype: np.dtype,
                    ws: Workspace) -> np.ndarray:
    """The (H + rows, T + 1, B) stack [h; x]: block t holds the state before step t over the
    one-hot of step t's input (id -1 is the last row, the start). The forward fills h in.
    ``h0`` None is the zero state."""
    steps, batch = ids.shape
    stack = ws.empty("stack", (hidden + rows, steps + 1, batch), dtype)
    if h0 is None:
        stack[:hidden, 0].fill(0)
    else:
        stack[:hidden, 0] = h0.T
    stack[hidden:].fill(0)
    _place_ones(stack, ids, hidden, rows, row_stride=(steps + 1) * batch, slot_stride=1)  # row, then t·B + b
    return stack


def _place_ones(stack: np.ndarray, ids: np.ndarray, hidden: int, rows: int, *, row_stride: int,
                slot_stride: int) -> None:
    """Write the one-hots of ``ids`` (T, B) into the zeroed input rows of a C-contiguous stack,
    as one 1-D scatter: the one of slot s = t·B + b sits at (hidden + id)·row_stride + s·slot_stride
    (id -1, the start, is the last row)."""
    ones = ids % rows
    ones += hidden
    ones *= row_stride
    ones += np.arange(0, ids.size * slot_stride, slot_stride).reshape(ids.shape)
    stack.reshape(-1)[ones] = 1.0


# Below this many multiply-adds a step, the forward product reads its left factor as the
# transpose of the padded (H + rows, G·H) array instead of a contiguous copy of that transpose.
_TRANSPOSE_FREE_WORK = 1_000_000


def _joint_weights(U: np.ndarray, E: np.ndarray, ws: Workspace, blocks: tuple[int, ...], batch: int,
                   halved: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[U^T | E^T] (G·H, H + rows): the left factor of every step's product.

    Block k of its G row blocks is block ``blocks[k]`` of U's and E's columns, and its first
    ``halved`` rows are multiplied by 0.5 (the LSTM's sigmoid gates). Also returns U with its
    columns so reordered but not halved (H, G·H), a workspace array for the backward pass.

    The reordered weights are written into rows padded by 16 floats. For a small step product
    (``_TRANSPOSE_FREE_WORK``) the result is that array's transpose as it is: with its own CPU
    detection here (AVX-512 kernels), OpenBLAS ran (4H × (H + 28)) · ((H + 28) × B) 9–13 % faster
    so at 48–64 units and batch 16–32, and 4–12 % slower from 80 units up at batch 32 (under
    the Haswell kernels both ran alike). Larger products take a contiguous copy of the
    transpose, which the padding makes cheap: read down a column of an unpadded (128, 512)
    array, every element is 2 KiB from the last, the reads all land in the same few cache sets,
    and NumPy's transposing copy took 73 µs (5 µs a time step at 128 units); from the padded
    copy it takes a quarter of that.
    """
    hidden, width = U.shape
    rows = hidden + E.shape[0]
    padded = ws.empty("joint_src", (rows, width + 16), U.dtype)[:, :width]
    size = width // len(blocks)
    for k, source in enumerate(blocks):
        padded[:hidden, k * size : (k + 1) * size] = U[:, source * size : (source + 1) * size]
        padded[hidden:, k * size : (k + 1) * size] = E[:, source * size : (source + 1) * size]
    if width * rows * batch <= _TRANSPOSE_FREE_WORK:
        reordered = ws.empty("U_reordered", U.shape, U.dtype)
        np.copyto(reordered, padded[:hidden])
        padded[:, :halved] *= 0.5
        return padded.T, reordered
    joint = ws.empty("joint", (width, rows), U.dtype)
    np.copyto(joint, padded.T)
    joint[:halved] *= 0.5
    return joint, padded[:hidden]


def _weight_grads(inputs: np.ndarray, da_rows: np.ndarray, hidden: int) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU from every step's inputs [h_{t-1}; x_t] as the columns of ``inputs``
    (H + rows, T·B) and the pre-activation gradients as the rows of ``da_rows`` (T·B, G·H).

    The sum over steps of [h_{t-1}; x_t] da_t^T is this ONE product, which runs near the BLAS
    peak, unlike T small ones inside the loop. Its top H rows are dU and the rest dE (fresh
    arrays, not workspace views). With the gradients as rows, OpenBLAS's AVX-512 kernels ran
    it 20 % faster than from a (G·H, T·B) matrix's transpose.
    """
    joint = inputs @ da_rows
    return joint[hidden:], joint[:hidden]


# ---------------------------------------------------------------- vanilla tanh RNN
#
# The RNN has no gate blocks to slice, so it runs *batch-major* within each step: step t's
# inputs are one contiguous (B, H + rows) block [h_{t-1} | x_t] of a (T + 1, B, H + rows) stack.
# Then every step reads a contiguous block, the recurrence's right factor is [U; E] as stored
# (no transposing copy), and both the states (T·B, H) and the stack's first T blocks
# (T·B, H + rows) are plain 2-D matrices, so the weight product needs no copy either. The
# states are returned as the (H, T·B) transpose of that matrix (a view), and the backward pass
# takes dLoss/dh best as such a view (a C-contiguous (T·B, H) matrix, transposed).


def _rnn_stacked_inputs(ids: np.ndarray, h0: np.ndarray | None, hidden: int, rows: int, dtype: np.dtype,
                        ws: Workspace) -> np.ndarray:
    """The (T + 1, B, H + rows) stack: block t holds, per name, the state before step t then
    the one-hot of step t's input (id -1 is the last column, the start). The forward fills h in."""
    steps, batch = ids.shape
    width = hidden + rows
    stack = ws.empty("rnn_stack", (steps + 1, batch, width), dtype)
    if h0 is None:
        stack[0, :, :hidden].fill(0)
    else:
        stack[0, :, :hidden] = h0
    stack[:steps, :, hidden:].fill(0)
    _place_ones(stack, ids, hidden, rows, row_stride=1, slot_stride=width)  # (t·B + b)·width + column
    return stack


def rnn_forward(ids: np.ndarray, E: np.ndarray, U: np.ndarray, state: State | None,
                ws: Workspace | None = None) -> tuple[np.ndarray, tuple]:
    """h_t = tanh(E[x_t] + h_{t-1} U) for every step of ``ids`` (T, B); ``state`` None is zero.

    Returns the states after every step as an (H, T·B) matrix (columns in (step, name) order;
    the transpose of a (T·B, H) matrix), and a cache for the backward. Both live in ``ws``
    when given (valid until its next use), else in fresh arrays. A step is one product,
    written straight into the next block's state, and one tanh in place.
    """
    ws = ws if ws is not None else Workspace()
    steps, batch = ids.shape
    hidden, dtype = U.shape[0], U.dtype
    rows = E.shape[0]
    stack = _rnn_stacked_inputs(ids, None if state is None else state[0], hidden, rows, dtype, ws)
    joint = ws.empty("rnn_joint", (hidden + rows, hidden), dtype)  # [U; E]
    joint[:hidden] = U
    joint[hidden:] = E
    first = hidden if _starts_at_zero(state) else 0  # h_0 = 0: step 0 reads only its input
    # The per-step views are made once per batch shape (see Workspace.memo).
    views = ws.memo(("rnn_forward", steps, batch, hidden, rows, dtype),
                    lambda: list(zip(stack[:steps], stack[1:, :, :hidden], strict=True)))
    for t, (x, h) in enumerate(views):
        if t:
            np.matmul(x, joint, h)
        else:
            np.matmul(x[:, first:], joint[first:], h)
        np.tanh(h, h)
    states = stack[1:, :, :hidden].reshape(steps * batch, hidden)
    return states.T, (U, stack, ws)


def rnn_backward(dh_cols: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU given dLoss/dh (H, T·B) for the states :func:`rnn_forward` returned.

    Works per step on contiguous (B, H) blocks: dLoss/dh is read as (T, B, H) (no copy when
    it comes as the transpose of a C-contiguous (T·B, H) matrix, as the network passes it),
    and tanh' = 1 - h² is made for every step at once before the loop, so the loop does one
    add, one multiply and one product a step. The pre-activation gradients come out as a
    (T·B, H) matrix, and [h_{t-1} | x_t] is already (T·B, H + rows): dU and dE are one product.
    """
    U, stack, ws = cache
    steps, batch = stack.shape[0] - 1, stack.shape[1]
    hidden, dtype = U.shape[0], U.dtype
    dh = dh_cols.T.reshape(steps, batch, hidden)
    da = ws.empty("rnn_da", (steps, batch, hidden), dtype)
    h = stack[1:, :, :hidden]
    np.multiply(h, h, out=da)
    np.subtract(1.0, da, out=da)
    carry = ws.zeros("rnn_carry", (batch, hidden), dtype)  # dLoss/dh_t arriving from step t + 1
    U_T = U.T
    for t in range(steps - 1, -1, -1):
        np.add(carry, dh[t], carry)
        d = da[t]
        np.multiply(d, carry, d)
        if t:  # nobody needs the start state's gradient
            np.matmul(d, U_T, carry)
    return _weight_grads(stack[:steps].reshape(steps * batch, -1).T, da.reshape(steps * batch, hidden), hidden)


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
_TRAIN_ORDER = (3, 0, 1, 2)  # stored gate block of each training position


def lstm_forward(ids: np.ndarray, E: np.ndarray, U: np.ndarray, state: State | None,
                 ws: Workspace | None = None) -> tuple[np.ndarray, tuple]:
    """All steps of an LSTM: one (4H, H + 28) x (H + 28, B) matmul a step and seven ufuncs.

    sigmoid(z) = 0.5 · tanh(z / 2) + 0.5, so the sigmoid gates' weights are halved once per
    batch (exact in binary floating point) and one tanh covers all four gates, followed by one
    affine fix-up of the sigmoid block.

    Each step's rows are laid out (o, i, f, g, c_{t-1}) in one (5H, B) block, so that
    [i; f] · [g; c_{t-1}] is ONE multiply, and c_t = i g + f c_{t-1} one add of its halves
    (written straight into the next step's c slot). The products [i g; f c_{t-1}] are kept:
    the backward pass needs exactly them. Every array is preallocated, in ``ws`` when given
    (valid until its next use). ``state`` None is the zero state.
    """
    ws = ws if ws is not None else Workspace()
    steps, batch = ids.shape
    hidden, dtype = U.shape[0], U.dtype
    H = hidden
    # The sigmoid gates' rows are halved: tanh(z / 2).
    weights, U_train = _joint_weights(U, E, ws, _TRAIN_ORDER, batch, halved=3 * H)
    stack = _stacked_inputs(ids, None if state is None else state[0], H, E.shape[0], dtype, ws)
    blocks = ws.empty("blocks", (steps + 1, 5 * H, batch), dtype)  # o, i, f, g, c_{t-1}
    if state is None:
        blocks[0, 4 * H :].fill(0)
    else:
        blocks[0, 4 * H :] = state[1].T
    prods = ws.empty("prods", (steps, 2 * H, batch), dtype)  # i g, f c_{t-1}
    tanh_c = ws.empty("tanh_c", (steps, H, batch), dtype)
    first = hidden if _starts_at_zero(state) else 0  # h_0 = 0: step 0 reads only its input

    def step_views() -> list[tuple[np.ndarray, ...]]:
        gates, c_slots = blocks[:steps, : 4 * H], blocks[1:, 4 * H :]
        return list(zip(stack[:, :steps].transpose(1, 0, 2), gates, gates[:, : 3 * H], gates[:, H : 3 * H],
                        blocks[:steps, 3 * H :], prods, prods[:, :H], prods[:, H:], c_slots, tanh_c, gates[:, :H],
                        stack[:H, 1:].transpose(1, 0, 2), strict=True))

    # The dozen per-step views are made once per batch shape: at 64 units making them every
    # step cost as much as one of the step's ufuncs.
    views = ws.memo(("lstm_forward", steps, batch, H, dtype), step_views)
    half = np.array(0.5, dtype)  # a 0-d array, not a Python float (module docstring)
    for t, (x, z, sig, i_f, g_c, p, p_ig, p_fc, c_next, tc, o, h) in enumerate(views):
        if t:
            np.matmul(weights, x, z)
        else:
            np.matmul(weights[:, first:], x[first:], z)
        np.tanh(z, z)
        np.multiply(sig, half, sig)
        np.add(sig, half, sig)
        np.multiply(i_f, g_c, p)  # [i g; f c_{t-1}]
        np.add(p_ig, p_fc, c_next)  # c_t = i g + f c_{t-1}
        np.tanh(c_next, tc)
        np.multiply(o, tc, h)  # h_t = o tanh(c_t)
    cache = (U_train, stack, blocks, prods, tanh_c, ws)
    return stack[:hidden, 1:].reshape(hidden, -1), cache


def _lstm_local_derivatives(blocks: np.ndarray, prods: np.ndarray, tanh_c: np.ndarray,
                            ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """Step-local factors of the LSTM's backward pass, for all steps at once.

    Returns ``K`` (T, 4H, B), blocks (o, i, f, g), with d pre-activation = K · dh for o and
    K · dc for i, f, g: K_o = tanh(c_t) o(1-o), K_i = g i(1-i), K_f = c_{t-1} f(1-f),
    K_g = i (1-g²); and ``carry`` (T, 2H, B) = [f_{t+1}; o_t (1 - tanh(c_t)²)], the factors by
    which dc_{t+1} and dh_t reach c_t (f_T = 0: nothing comes from after the last step).
    Computing these over all steps at once leaves the sequential loop only the products with
    the carried gradients. The forward's products i g and f c_{t-1} and q = o tanh(c_t) save
    passes: K_i, K_f = [i g; f c_{t-1}] (1 - [i; f]), K_g = i - (i g) g, K_o = q (1 - o) and
    o (1 - tanh(c_t)²) = o - q tanh(c_t).
    """
    steps, hidden, batch = tanh_c.shape
    H = hidden
    gates = blocks[:steps, : 4 * H]
    o, i, f, g = (gates[:, k * H : (k + 1) * H] for k in range(4))
    K = ws.empty("K", gates.shape, gates.dtype)
    K_o, K_if, K_g = K[:, :H], K[:, H : 3 * H], K[:, 3 * H :]
    np.subtract(1.0, gates[:, : 3 * H], out=K[:, : 3 * H])  # 1 - s for o, i, f
    K_if *= prods
    np.multiply(prods[:, :H], g, out=K_g)
    np.subtract(i, K_g, out=K_g)
    q = np.multiply(o, tanh_c, out=ws.empty("o_tanh_c", tanh_c.shape, tanh_c.dtype))
    K_o *= q
    carry = ws.empty("carry", (steps, 2 * H, batch), tanh_c.dtype)
    carry[-1, :H] = 0.0
    np.copyto(carry[:-1, :H], f[1:])
    dc_dh = carry[:, H:]
    np.multiply(q, tanh_c, out=dc_dh)
    np.subtract(o, dc_dh, out=dc_dh)
    return K, carry


def lstm_backward(dh_cols: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """dE and dU given dLoss/dh (H, T·B); the loop does five in-place ufuncs and one matmul a step.

    The carried gradients live in one (2H, B) array [dc; dh], so that
    dc_t = f_{t+1} dc_{t+1} + o_t (1 - tanh(c_t)²) dh_t is one multiply by the precomputed
    [f_{t+1}; o_t (1 - tanh(c_t)²)] and one add of the halves.
    """
    U_train, stack, blocks, prods, tanh_c, ws = cache
    steps, hidden, batch = tanh_c.shape
    H = hidden
    # dLoss/dh per step as contiguous (H, B) blocks: one transposing copy here is cheaper than
    # adding a strided (H, B) slice every step.
    dh_out = ws.empty("dh_by_step", (steps, hidden, batch), tanh_c.dtype)
    np.copyto(dh_out, dh_cols.reshape(hidden, steps, batch).transpose(1, 0, 2))
    da, carry = _lstm_local_derivatives(blocks, prods, tanh_c, ws)
    both = ws.zeros("dc_dh_carried", (2 * H, batch), da.dtype)  # [dc; dh]
    scratch = ws.empty("dc_terms", (2 * H, batch), da.dtype)
    dc, dh, from_dc, from_dh = ws.memo(("lstm_carry", H, batch, da.dtype),
                                       lambda: (both[:H], both[H:], scratch[:H], scratch[H:]))
    views = ws.memo(("lstm_backward", steps, batch, H, da.dtype), lambda: list(zip(
        da[::-1], da[::-1, :H], da[::-1, H : 2 * H], da[::-1, 2 * H : 3 * H], da[::-1, 3 * H :], carry[::-1],
        dh_out[::-1], strict=True)))
    later = None  # the pre-activation gradients of step t + 1
    for d, d_o, d_i, d_f, d_g, factors, out in views:
        if later is None:
            np.copyto(dh, out)
        else:
            np.dot(U_train, later, dh)  # dh_t = U d_{t+1} + dLoss/dh_t
            np.add(dh, out, dh)
        np.multiply(both, factors, scratch)
        np.add(from_dc, from_dh, dc)  # dc_t = f_{t+1} dc_{t+1} + o (1 - tanh(c_t)^2) dh_t
        np.multiply(d_o, dh, d_o)
        # Three multiplies by dc: 25 % faster than one broadcast over the (3, H, B) block.
        np.multiply(d_i, dc, d_i)
        np.multiply(d_f, dc, d_f)
        np.multiply(d_g, dc, d_g)
        later = d
    # One copy makes each (step, name) a row for the weight product and puts the gate blocks
    # back in the stored order (i, f, g, o), so dE and dU come out in that order: training's
    # (o, i, f, g) is that order rotated by one block. Transposing each step's (4H, B) block
    # costs more than copying it whole did, which the faster product more than repays on
    # AVX-512 kernels; under the Haswell kernels the LSTM ended about 2 % slower.
    da_rows = ws.empty("da_rows", (steps, batch, 4 * H), da.dtype)
    np.copyto(da_rows[..., : 3 * H], da[:, H:].transpose(0, 2, 1))
    np.copyto(da_rows[..., 3 * H :], da[:, :H].transpose(0, 2, 1))
    return _weight_grads(stack[:, :steps].reshape(stack.shape[0], -1), da_rows.reshape(steps * batch, 4 * H), hidden)


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
    np.tanh(z, z)
    sig = z[..., : 3 * hidden]
    half = np.array(0.5, z.dtype)  # a 0-d array, not a Python float (module docstring)
    np.multiply(sig, half, sig)
    np.add(sig, half, sig)
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
    forward: Callable  # training: (ids, E, U, state or None for zeros, workspace) -> (h (H, T·B), cache)
    backward: Callable  # (dLoss/dh (H, T·B), cache) -> (dE, dU)
    prepare: Callable  # inference: weights rearranged once for the fast step
    step: Callable


CELLS: dict[str, Cell] = {
    "rnn": Cell("rnn", 1, 1, rnn_forward, rnn_backward, rnn_prepare, rnn_step),
    "lstm": Cell("lstm", 4, 2, lstm_forward, lstm_backward, lstm_prepare, lstm_step),
}
