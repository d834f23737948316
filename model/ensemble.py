"""A name model: one or more networks of the same shape whose probabilities are averaged,
optionally combined with a character n-gram model.

Averaging the next-letter distributions of a few independently trained networks is the
cheapest big win on a corpus this small: five LSTMs that each reach ~1.56–1.57 val NLL reach
~1.50 together. A single member is simply the plain network. For inference the members' weights
are stacked, so one batched matmul per step serves all of them.

With an n-gram (:mod:`model.ngram`) the model's distribution is the weighted product of the
ensemble's and the n-gram's (:mod:`model.mixing`). Everything that uses a model (sampling,
scoring, evaluation, checkpoints, fine-tuning) goes through :meth:`NameModel.step` and
:meth:`NameModel.nll`, so it all sees the mixture. The n-gram's history of each row rides
along in the sampling state as one more array, batch on axis 1 like the networks' states.
"""
from __future__ import annotations

from functools import cached_property
from typing import Sequence

import numpy as np

from .cells import State
from .corpus import EncodedCorpus
from .mixing import Mixing, fit_mixing
from .network import PARAM_NAMES, CharModel, ModelConfig
from .ngram import NGramModel

_ROW_BLOCK = 256


class NameModel:
    """Immutable once built: training works on copies, so readers never see half an update."""

    def __init__(self, members: Sequence[CharModel], metadata: dict | None = None,
                 ngram: NGramModel | None = None, mixing: Mixing | None = None):
        if not members:
            raise ValueError("a name model needs at least one network")
        configs = {m.config for m in members}
        if len(configs) != 1:
            raise ValueError(f"ensemble members must share one config, got {configs}")
        if (ngram is None) != (mixing is None):
            raise ValueError("an n-gram and its mixing weights come together")
        if ngram is not None and len(mixing.weights) != ngram.order:
            raise ValueError(f"a {ngram.order}-gram needs {ngram.order} mixing weights, not {len(mixing.weights)}")
        self.members = list(members)
        self.metadata = dict(metadata or {})
        self.ngram, self.mixing = ngram, mixing

    @property
    def config(self) -> ModelConfig:
        return self.members[0].config

    @property
    def cell(self):
        return self.members[0].cell

    @property
    def num_params(self) -> int:
        return sum(m.num_params for m in self.members)

    def copy(self, metadata: dict | None = None) -> "NameModel":
        metadata = metadata if metadata is not None else self.metadata
        return NameModel([m.copy() for m in self.members], metadata, self.ngram, self.mixing)

    def with_ngram(self, ngram: NGramModel | None, mixing: Mixing | None) -> "NameModel":
        """The same networks (shared, not copied: they are never modified) with another n-gram part."""
        return NameModel(self.members, self.metadata, ngram, mixing)

    @cached_property
    def _stacked(self) -> dict[str, np.ndarray]:
        """Members' weights stacked on a leading axis, rearranged for the cell's fast step."""
        stacked = {k: np.stack([m.params[k] for m in self.members]) for k in PARAM_NAMES}
        stacked["E"], stacked["U"] = self.cell.prepare(stacked["E"], stacked["U"])
        stacked["b"] = stacked["b"][:, None, :]
        return stacked

    @cached_property
    def _row_weights(self) -> np.ndarray:
        """The n-gram's weight λ for each of its context rows, (contexts, 1) float32."""
        return np.asarray(self.mixing.weights, dtype=np.float32)[self.ngram.context_length][:, None]

    def zero_state(self, batch: int) -> State:
        shape = (len(self.members), batch, self.config.hidden)
        state = tuple(np.zeros(shape, dtype=self._stacked["U"].dtype) for _ in range(self.cell.states))
        if self.ngram is not None:
            state += (np.zeros((1, batch), dtype=np.int64),)  # n-gram context rows (set by the start)
        return state

    def step(self, ids: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """Feed one symbol per row (-1 = start); return the next-symbol probabilities."""
        if self.ngram is None:
            return self._network_step(ids, state)
        probs, net_state = self._network_step(ids, state[:-1])
        rows = self.ngram.advance(state[-1][0], ids)
        weight = self._row_weights[rows]
        np.log(probs, out=probs)  # in logs: twice as fast as np.power in float32
        probs *= 1.0 - weight
        probs += weight * self.ngram.log_table[rows]
        np.exp(probs, out=probs)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs, net_state + (rows[None],)

    def _network_step(self, ids: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """The ensemble's averaged probabilities.

        Large batches run in row blocks that keep the gate arrays in cache, which roughly halves a
        step for 1 000 rows (README, sampling figures).
        """
        if len(ids) <= _ROW_BLOCK:
            return self._step_block(ids, state)
        parts = [self._step_block(ids[i : i + _ROW_BLOCK], tuple(s[:, i : i + _ROW_BLOCK] for s in state))
                 for i in range(0, len(ids), _ROW_BLOCK)]
        probs = np.concatenate([p for p, _ in parts])
        return probs, tuple(np.concatenate([st[k] for _, st in parts], axis=1) for k in range(len(state)))

    def _step_block(self, ids: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        p = self._stacked
        state = self.cell.step(p["E"][:, ids], p["U"], state)
        logits = np.matmul(state[0], p["W"])
        logits += p["b"]
        probs = _softmax(logits).sum(axis=0)  # sum, then scale: ndarray.mean costs 5 µs a call
        probs *= 1.0 / len(self.members)
        return probs, state

    def network_probs(self, inputs_tm: np.ndarray) -> np.ndarray:
        """The ensemble's next-symbol probabilities (T, B, V), float64, for time-major inputs."""
        return sum(member.sequence_probs(inputs_tm) for member in self.members) / len(self.members)

    def sequence_probs(self, inputs_tm: np.ndarray) -> np.ndarray:
        """The model's next-symbol probabilities (T, B, V), float64: the mixture if there is one."""
        probs = self.network_probs(inputs_tm)
        if self.ngram is None:
            return probs
        rows = self.ngram.sequence_rows(inputs_tm)
        ngram = self.ngram.probs(rows).astype(np.float64)
        return self.mixing.combine(probs, ngram, self.ngram.context_length[rows])

    def nll(self, names: Sequence[str], batch_size: int = 512) -> tuple[float, int]:
        """Summed NLL (nats) of the model over all predicted characters, and their count."""
        total, count = 0.0, 0
        for batch in EncodedCorpus(names).in_length_order(batch_size):
            x, y, m = (arr.T for arr in batch)  # time-major
            picked = np.take_along_axis(self.sequence_probs(x), y[..., None], axis=-1)[..., 0]
            total += float(-np.log(np.maximum(picked[m], 1e-300), dtype=np.float64).sum())
            count += int(m.sum())
        return total, count

    def nll_per_name(self, names: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Mean NLL per predicted character of each name, in the order given.

        Runs the inference step that sampling uses (members stacked, float32, the n-gram mixed
        in), so scoring a whole corpus costs about what sampling as many names does, a quarter
        of :meth:`nll`'s float64 forward pass (small batches: the gate arrays stay in cache).
        Agrees with ``nll([name])`` to ~1e-6.
        """
        corpus = EncodedCorpus(names)
        out = np.empty(len(corpus), dtype=np.float64)
        order = np.argsort(corpus.lengths, kind="stable")
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            x, y, m = corpus._batch(rows)  # same package: the padded rows, (names, steps)
            state, total, picked = self.zero_state(len(rows)), np.zeros(len(rows)), np.arange(len(rows))
            for t in range(x.shape[1]):
                probs, state = self.step(x[:, t], state)
                nll = -np.log(np.maximum(probs[picked, y[:, t]], 1e-30), dtype=np.float64)
                total += np.where(m[:, t], nll, 0.0)
            out[rows] = total / m.sum(axis=1)
        return out


def predictions(model: NameModel, ngram: NGramModel, names: Sequence[str]) -> tuple[np.ndarray, ...]:
    """At every predicted position of ``names``: the ensemble's and ``ngram``'s distributions
    (N, V), the targets (N,) and the n-gram's matched context lengths (N,)."""
    nets, grams, targets, lengths = [], [], [], []
    for batch in EncodedCorpus(names).in_length_order(512):
        x, y, m = (arr.T for arr in batch)
        rows = ngram.sequence_rows(x)[m]
        nets.append(model.network_probs(x)[m])
        grams.append(ngram.probs(rows).astype(np.float64))
        targets.append(y[m])
        lengths.append(ngram.context_length[rows])
    return tuple(np.concatenate(parts) for parts in (nets, grams, targets, lengths))


def with_fitted_ngram(model: NameModel, ngram: NGramModel, val_names: Sequence[str]) -> NameModel:
    """``model``'s networks combined with ``ngram``, the weights fitted on ``val_names``."""
    return model.with_ngram(ngram, fit_mixing(*predictions(model, ngram, val_names), order=ngram.order))


def evaluate(model: NameModel | CharModel, names: Sequence[str]) -> float:
    """Mean NLL in nats per predicted character over ``names`` (the corpus README's metric).

    A name of n letters counts n + 1 predictions. One network is scored as a one-member
    ensemble, so training's per-epoch validation and reported quality are the same number.
    """
    if isinstance(model, CharModel):
        model = NameModel([model])
    total, count = model.nll(names)
    return total / count


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z
