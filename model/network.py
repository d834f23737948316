"""The character model: an input table, one recurrent cell and a softmax output layer.

Parameters (G = the cell's gate count, H = hidden size, V = 27 symbols):

- ``E`` (V + 1, G·H): one row per input symbol plus a last row for the start of a name
  (input id -1). A one-hot input times a weight matrix plus a bias is exactly a row lookup, so
  the table folds both (training multiplies the one-hots in with the recurrence, see
  :mod:`model.cells`; inference gathers rows).
- ``U`` (H, G·H): the recurrence, the only part that has to loop over time.
- ``W`` (H, V) and ``b`` (V,): the output projection, done for all steps in one product.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .cells import CELLS, Cell, State
from .vocab import VOCAB_SIZE
from .workspace import Workspace, training_workspace

PARAM_NAMES = ("E", "U", "W", "b")
# Orthogonal recurrence scaled down for the tanh RNN: at gain 1 it overfits sooner and its best
# val NLL was 1.72 against 1.67 at 0.3 (same seed, 30 epochs); the LSTM was indifferent.
_RECURRENT_GAIN = {"rnn": 0.3, "lstm": 1.0}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network's shapes (stored in every checkpoint)."""

    cell: str = "rnn"
    hidden: int = 128
    dropout: float = 0.0  # on the hidden state before the output layer, training only

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell '{self.cell}'; choose one of {', '.join(CELLS)}")
        if not 1 <= self.hidden <= 4096:
            raise ValueError(f"hidden size must be 1–4096, not {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)


class CharModel:
    """A character-level language model over the 27-symbol alphabet."""

    def __init__(self, config: ModelConfig, params: dict[str, np.ndarray]):
        self.config = config
        self.cell: Cell = CELLS[config.cell]
        self.params = params
        self.check_shapes()

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, config: ModelConfig, rng: np.random.Generator | None = None,
               dtype: np.dtype | type = np.float32) -> "CharModel":
        """Random weights: small uniform input rows, scaled orthogonal recurrence, zero output bias."""
        rng = rng if rng is not None else np.random.default_rng()
        cell, hidden = CELLS[config.cell], config.hidden
        width = cell.gates * hidden
        E = rng.uniform(-0.1, 0.1, (VOCAB_SIZE + 1, width))
        U = np.concatenate([_orthogonal(rng, hidden) for _ in range(cell.gates)], axis=1) * _RECURRENT_GAIN[config.cell]
        if config.cell == "lstm":
            E[:, hidden : 2 * hidden] += 1.0  # forget gate open at first: remember by default
        W = rng.normal(0.0, 1.0 / np.sqrt(hidden), (hidden, VOCAB_SIZE))
        params = {"E": E, "U": U, "W": W, "b": np.zeros(VOCAB_SIZE)}
        return cls(config, {k: v.astype(dtype) for k, v in params.items()})

    def check_shapes(self) -> None:
        """Refuse weights that do not fit the config, so a bad file is never half-used."""
        hidden, width = self.config.hidden, self.cell.gates * self.config.hidden
        expected = {"E": (VOCAB_SIZE + 1, width), "U": (hidden, width),
                    "W": (hidden, VOCAB_SIZE), "b": (VOCAB_SIZE,)}
        if set(self.params) != set(expected):
            raise ValueError(f"parameters {sorted(self.params)} do not match {sorted(expected)}")
        for name, shape in expected.items():
            if self.params[name].shape != shape:
                raise ValueError(f"parameter {name} has shape {self.params[name].shape}, expected {shape}")

    def astype(self, dtype: np.dtype | type) -> "CharModel":
        return CharModel(self.config, {k: v.astype(dtype) for k, v in self.params.items()})

    def copy(self) -> "CharModel":
        return CharModel(self.config, {k: v.copy() for k, v in self.params.items()})

    @property
    def dtype(self) -> np.dtype:
        return self.params["U"].dtype

    @property
    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    # ------------------------------------------------------------------ running
    def zero_state(self, batch: int) -> State:
        shape = (batch, self.config.hidden)
        return tuple(np.zeros(shape, dtype=self.dtype) for _ in range(self.cell.states))

    def sequence_probs(self, inputs_tm: np.ndarray) -> np.ndarray:
        """Next-symbol probabilities (T, B, V) for time-major inputs, computed in float64."""
        p = {k: v.astype(np.float64) for k, v in self.params.items()}
        steps, batch = inputs_tm.shape
        state = tuple(s.astype(np.float64) for s in self.zero_state(batch))
        h, _ = self.cell.forward(inputs_tm, p["E"], p["U"], state)
        logits = h.T @ p["W"] + p["b"]
        logits -= logits.max(axis=-1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=-1, keepdims=True)
        return logits.reshape(steps, batch, -1)

    def loss_and_grads(self, inputs: np.ndarray, targets: np.ndarray, mask: np.ndarray,
                       rng: np.random.Generator | None = None,
                       want_grads: bool = True) -> tuple[float, int, dict[str, np.ndarray] | None]:
        """Summed NLL over masked positions, their count, and gradients of the *mean* NLL.

        Batches are (B, T) as :func:`model.vocab.encode_batch` makes them; internally time-major,
        and the hidden states are one (H, T·B) matrix (see :mod:`model.cells`).
        ``rng`` turns dropout on (training); without it the model is deterministic.
        """
        p = self.params
        x, y, m = inputs.T, targets.T, mask.T
        ws = training_workspace()
        h, cache = self.cell.forward(x, p["E"], p["U"], None, ws)  # None: the zero state
        # A cell may return h as the transpose of a C-contiguous (T·B, H) matrix (the RNN does);
        # the dropout mask, h_out and dLoss/dh then take that layout too, so every elementwise
        # pass runs over contiguous memory and the cell's backward reads dLoss/dh without a copy.
        rows_major = not h.flags.c_contiguous
        keep = self._dropout_mask(x.shape, rng, rows_major)
        h_out = (np.multiply(h, keep, out=_scratch_like(ws, "h_out", h, rows_major)) if keep is not None
                 else h)
        loss, count, dlogits = _softmax_cross_entropy(h_out, p["W"], p["b"], y.reshape(-1), m.reshape(-1),
                                                      want_grads, ws)
        if dlogits is None:
            return loss, count, None
        grads = {"W": h_out @ dlogits.T, "b": dlogits.sum(axis=1)}
        # The output layer saw h_out = h * keep, so the gradient w.r.t. h passes back through the mask.
        if rows_major:  # dh^T = dlogits^T W^T, written as the contiguous (T·B, H) matrix
            # W^T copied first: OpenBLAS ran this product 15 % faster with it contiguous.
            W_T = ws.empty("W_T", p["W"].shape[::-1], h.dtype)
            np.copyto(W_T, p["W"].T)
            dh = np.matmul(dlogits.T, W_T, out=ws.empty("dh_rows", h.shape[::-1], h.dtype)).T
        else:
            dh = np.matmul(p["W"], dlogits, out=ws.empty("dh_cols", h.shape, h.dtype))
        if keep is not None:
            dh *= keep
        grads["E"], grads["U"] = self.cell.backward(dh, cache)
        return loss, count, grads

    def _dropout_mask(self, steps_batch: tuple[int, int], rng: np.random.Generator | None,
                      rows_major: bool = False) -> np.ndarray | None:
        """Inverted-dropout multipliers for the hidden states, (H, T·B) like them, or None.

        Drawn in (step, name, unit) order whatever the internal layout, so a seeded training
        run makes the same model as it always did. ``rows_major``: laid out like a transposed
        C-contiguous (T·B, H) matrix (as the RNN's states are) instead of C-contiguous.
        """
        rate, hidden = self.config.dropout, self.config.hidden
        if rng is None or rate == 0.0:
            return None
        keep = (rng.random((*steps_batch, hidden), dtype=np.float32) >= rate).reshape(-1, hidden)
        if rows_major:
            return (keep.astype(self.dtype) / (1.0 - rate)).T
        return np.ascontiguousarray(keep.T).astype(self.dtype) / (1.0 - rate)


def _scratch_like(ws: Workspace, name: str, a: np.ndarray, rows_major: bool) -> np.ndarray:
    """A workspace array shaped like the 2-D ``a``, transposed-contiguous if ``rows_major``."""
    return ws.empty(name, a.shape[::-1], a.dtype).T if rows_major else ws.empty(name, a.shape, a.dtype)


def _softmax_cross_entropy(h: np.ndarray, W: np.ndarray, b: np.ndarray, flat_y: np.ndarray, flat_m: np.ndarray,
                           want_grads: bool, ws: Workspace) -> tuple[float, int, np.ndarray | None]:
    """Output layer, softmax and masked NLL for all N = T·B positions (the columns of h) at once.

    Returns the summed NLL over masked positions, their count and (if wanted) dLoss/dlogits of
    the *mean* NLL, shaped (V, N). Logits are kept (V, N) rather than (N, V) because the
    reductions over the 27 symbols then run across rows, vectorised, instead of along short rows.
    """
    logits = np.matmul(W.T, h, out=ws.empty("logits", (W.shape[1], h.shape[1]), h.dtype))
    logits += b[:, None]
    logits -= logits.max(axis=0)
    # The targets' flat positions in logits, for one 1-D gather now and one scatter below.
    targets = np.multiply(flat_y, logits.shape[1], dtype=np.intp)  # intp: no overflow for small int ids
    targets += np.arange(flat_y.size)
    target_logit = logits.reshape(-1).take(targets)
    probs = np.exp(logits, out=logits)
    total = probs.sum(axis=0)
    count = int(np.count_nonzero(flat_m))
    # log-sum-exp form: exact even where the target's probability underflows.
    loss = float((np.log(total[flat_m], dtype=np.float64) - target_logit[flat_m]).sum())
    if not want_grads:
        return loss, count, None
    weight = flat_m.astype(probs.dtype)
    weight /= max(count, 1)
    probs *= weight / total  # softmax, scaled by each position's share of the mean
    flat = probs.reshape(-1)
    flat[targets] = flat.take(targets) - weight  # minus the one-hot target
    return loss, count, probs


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))
