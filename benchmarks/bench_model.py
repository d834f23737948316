"""Benchmarks for the NumPy name model: training speed, time to quality, sampling, quality.

Run from the project root (one thread for every BLAS, so the figures compare like with like):

    .venv/bin/python benchmarks/bench_model.py            # everything (about 2 minutes)
    .venv/bin/python benchmarks/bench_model.py speed      # training throughput only (~2 min with PyTorch)
    .venv/bin/python benchmarks/bench_model.py zoo        # val NLL and samples of the model zoo (~2 min)
    .venv/bin/python benchmarks/bench_model.py heldout    # NLL on held-out fifths of the train file (~1 min)

Training throughput is compared, in the same run, against
  * the seed's algorithm (one name per step, plain SGD, per-value clipping, float64 as in the
    original exercise), reimplemented below at the same hidden size, and
  * PyTorch's nn.RNN / nn.LSTM via ../shared/bench/torch_rnn_reference.py throughput --bucket (the
    same length-bucketed batches as ours), run as a subprocess between our repetitions, when a
    Python with torch is found ($TORCH_PYTHON, else ../torchvenv/bin/python). torch is never a
    dependency.
Figures are medians of interleaved repetitions; ratios are ours / reference.

Run the speed part with OpenBLAS's own CPU detection, as a current NumPy has it:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/bench_model.py speed

Some machines here set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) because older OpenBLAS builds
fail on their processors. That pins NumPy's OpenBLAS to older kernels (Haswell's AVX2 on an
AVX-512 machine) while PyTorch's MKL still picks its own, so the pinned figures compare the two
libraries on different instruction sets. The benchmark prints both sides' kernels, says when the
pin is set, and the README quotes both runs.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from model import (  # noqa: E402
    BASE_CHECKPOINT,
    CharModel,
    ModelConfig,
    NameModel,
    TrainConfig,
    evaluate,
    load_checkpoint,
    read_names,
    sample_names,
    train_path,
    val_path,
)
from model.ensemble import predictions  # noqa: E402
from model.mixing import Mixing, fit_mixing, mixture_nll  # noqa: E402
from model.ngram import NGramModel  # noqa: E402
from model.training import Adam, EncodedCorpus, clip_gradients, run_epochs  # noqa: E402
from model.vocab import encode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TORCH_SCRIPT = ROOT.parent / "shared" / "bench" / "torch_rnn_reference.py"


# --------------------------------------------------------------------------- training speed
#
# Like for like with the PyTorch reference: the same batches (length-bucketed exactly as its
# --bucket picks them: sorted by length, ties shuffled, cut into 32s, one random chunk per step,
# from the same seed, so both sides see the same batch sequence), hidden size, optimiser (Adam
# 3e-3), clipping rule (global norm 5), warm-up (20 steps) and thread count (one). Repetitions
# alternate ours, PyTorch, ours, PyTorch, so drifting load on a shared machine hits both alike.

SPEED_STEPS, WARMUP_STEPS = 200, 20


def bucketed_batches(corpus: EncodedCorpus, count: int, seed: int = 0) -> list:
    """The reference's ``batch_picker(L, default_rng(seed), bucket=True)``, applied to our corpus."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(corpus)), corpus.lengths))  # by length, ties shuffled
    chunks = [order[i : i + 32] for i in range(0, len(order) - 31, 32)]
    batches = []
    for _ in range(count):
        rows = chunks[rng.integers(len(chunks))]
        steps = int(corpus.lengths[rows].max())
        batches.append((corpus.inputs[rows, :steps], corpus.targets[rows, :steps], corpus.mask[rows, :steps]))
    return batches


def ours_chars_per_sec(cell: str, hidden: int, batches: list) -> float:
    model = CharModel.create(ModelConfig(cell, hidden), np.random.default_rng(0))
    opt = Adam(model.params, 3e-3)
    for inputs, targets, mask in batches[:WARMUP_STEPS]:
        _train_step(model, opt, inputs, targets, mask)
    chars, start = 0, time.perf_counter()
    for inputs, targets, mask in batches[WARMUP_STEPS:]:
        chars += _train_step(model, opt, inputs, targets, mask)
    return chars / (time.perf_counter() - start)


def _train_step(model, opt, inputs, targets, mask) -> int:
    _, count, grads = model.loss_and_grads(inputs, targets, mask)
    clip_gradients(grads, 5.0, "norm")  # the same rule as the PyTorch reference
    opt.step(grads)
    return count


def seed_chars_per_sec(hidden: int, names: list[str], steps: int, rng) -> float:
    """The seed's loop: one name per SGD step, forward and backward one character at a time."""
    V = 27
    p = {"Wax": rng.normal(0, 0.01, (hidden, V)), "Waa": rng.normal(0, 0.01, (hidden, hidden)),
         "Wya": rng.normal(0, 0.01, (V, hidden)), "b": np.zeros((hidden, 1)), "by": np.zeros((V, 1))}
    chars, start = 0, time.perf_counter()
    for step in range(steps):
        name = names[step % len(names)]
        xs, ys = [None] + encode(name), encode(name) + [0]
        a, y_hat, x_vec = {-1: np.zeros((hidden, 1))}, {}, {}
        for t, x in enumerate(xs):  # forward
            x_vec[t] = np.zeros((V, 1))
            if x is not None:
                x_vec[t][x] = 1
            a[t] = np.tanh(p["Wax"] @ x_vec[t] + p["Waa"] @ a[t - 1] + p["b"])
            z = p["Wya"] @ a[t] + p["by"]
            y_hat[t] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        g = {k: np.zeros_like(v) for k, v in p.items()}
        da_next = np.zeros((hidden, 1))
        for t in reversed(range(len(xs))):  # backward
            dy = y_hat[t].copy()
            dy[ys[t]] -= 1
            g["Wya"] += dy @ a[t].T
            g["by"] += dy
            da = p["Wya"].T @ dy + da_next
            draw = (1 - a[t] ** 2) * da
            g["b"] += draw
            g["Wax"] += draw @ x_vec[t].T
            g["Waa"] += draw @ a[t - 1].T
            da_next = p["Waa"].T @ draw
        for k in p:
            np.clip(g[k], -5, 5, out=g[k])
            p[k] -= 0.01 * g[k]
        chars += len(ys)
    return chars / (time.perf_counter() - start)


def torch_python() -> str | None:
    candidate = os.environ.get("TORCH_PYTHON") or str(ROOT.parent / "torchvenv" / "bin" / "python")
    return candidate if Path(candidate).exists() and TORCH_SCRIPT.exists() else None


def torch_command(python: str, cell: str, hidden: int | str) -> list[str]:
    """One repetition of the reference on length-bucketed batches, one thread."""
    return [python, str(TORCH_SCRIPT), "throughput", "--bucket", "--cells", cell, "--hidden", str(hidden),
            "--reps", "1", "--steps", str(SPEED_STEPS), "--threads", "1"]


def torch_chars_per_sec(python: str, cell: str, hidden: int) -> float:
    out = subprocess.run(torch_command(python, cell, hidden), capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    found = re.search(rf"^{cell}-{hidden}: median ([\d,]+) chars/s", out, re.M)
    if not found:
        raise RuntimeError(f"unexpected output from {TORCH_SCRIPT.name}:\n{out}")
    return float(found.group(1).replace(",", ""))


def blas_in_use() -> str:
    """Which BLAS NumPy runs and on which kernels, and whether the environment pins them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # the test extras install it
        found = ["unknown (install the test extras: pip install -e '.[test]')"]
    else:
        found = [f"{info['internal_api']} {info['version']} ({info.get('architecture') or 'unknown'} kernels, "
                 f"{info['num_threads']} thread)" for info in threadpool_info() if info["user_api"] == "blas"]
    pins = [f"{var}={os.environ[var]}" for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if var in os.environ]
    pinned = (f"; pinned by {' '.join(pins)}: PyTorch's MKL is not, so run under `env -u OPENBLAS_CORETYPE "
              "-u OPENBLAS_L2_SIZE` for like with like") if pins else "; OpenBLAS's own CPU detection"
    return "NumPy's BLAS: " + (", ".join(found) or "not found by threadpoolctl") + pinned


def torch_cpu(python: str) -> str:
    """The PyTorch reference's version and the instruction set its CPU kernels use."""
    probe = "import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability())"
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    return f"PyTorch {out[0]} ({out[1]} CPU kernels; its BLAS is MKL, which OPENBLAS_* do not touch)"


def bench_speed(reps: int, hiddens: list[int]) -> None:
    names = read_names(train_path())
    batches = bucketed_batches(EncodedCorpus(names), WARMUP_STEPS + SPEED_STEPS)
    python = torch_python()
    seed: list[float] = []
    rates: dict[tuple[str, str, int], list[float]] = {}
    for _ in range(reps):
        for hidden in hiddens:
            for cell in ("rnn", "lstm"):
                rates.setdefault(("ours", cell, hidden), []).append(ours_chars_per_sec(cell, hidden, batches))
                if python:
                    rates.setdefault(("torch", cell, hidden), []).append(torch_chars_per_sec(python, cell, hidden))
        seed.append(seed_chars_per_sec(128, names, 300, np.random.default_rng(0)))
    print(f"\n## Training throughput: predicted chars/s, batch 32 length-bucketed (the same batches on both "
          f"sides), one thread, {reps} interleaved repetitions of {SPEED_STEPS} steps")
    print(blas_in_use())
    if python:
        print(torch_cpu(python))
        print("PyTorch, one repetition: " + " ".join(torch_command(python, "CELL", "H")))
    print(f"seed's one-name SGD loop (float64, hidden 128): median {np.median(seed):,.0f}")
    for hidden in hiddens:
        for cell in ("rnn", "lstm"):
            ours = rates[("ours", cell, hidden)]
            print(f"{cell}-{hidden} ours:    {_figures(ours)}")
            if python:
                ref = rates[("torch", cell, hidden)]
                paired = np.median(np.array(ours) / np.array(ref))
                print(f"{cell}-{hidden} PyTorch: {_figures(ref)}")
                print(f"{cell}-{hidden} ratio ours / PyTorch: {np.median(ours) / np.median(ref):.2f}× "
                      f"(ratio of medians; median of the paired repetitions' ratios {paired:.2f}×)")
    if not python:
        print("(PyTorch not found: set TORCH_PYTHON to a Python with torch for the ratio)")


def _figures(rates: list[float]) -> str:
    return f"median {np.median(rates):,.0f} [" + ", ".join(f"{r:,.0f}" for r in rates) + "]"


# --------------------------------------------------------------------------- time to quality

def bench_time_to_quality(threshold: float = 1.66) -> None:
    train_names, val_names = read_names(train_path()), read_names(val_path())
    print(f"\n## Time from random weights to val NLL <= {threshold} (one thread, one network)")
    for config, lr in ((ModelConfig("lstm", 64, 0.2), 1e-2), (ModelConfig("rnn", 128), 3e-3)):
        hit: dict[str, float] = {}
        wall = time.perf_counter()

        def progress(p, wall=wall, hit=hit) -> None:
            if p.val_loss <= threshold and not hit:
                hit.update(epoch=p.epoch, train=p.elapsed, wall=time.perf_counter() - wall)

        run_epochs(CharModel.create(config, np.random.default_rng(0)), lambda rng: EncodedCorpus(train_names),
                   val_names, TrainConfig(epochs=40, lr=lr, patience=6), progress, lambda hit=hit: bool(hit))
        label = f"{config.cell}-{config.hidden}"
        if hit:
            print(f"{label}: epoch {hit['epoch']}, {hit['train']:.2f} s of training, "
                  f"{hit['wall']:.2f} s wall including validation")
        else:
            print(f"{label}: did not reach {threshold}")


# --------------------------------------------------------------------------- sampling

def bench_sampling(model: NameModel, reps: int = 5) -> None:
    """The shipped model and its networks alone, interleaved: what the n-gram part costs."""
    candidates = {"shipped model": model}
    if model.ngram is not None:
        candidates["its networks alone"] = model.with_ngram(None, None)
    rng = np.random.default_rng(0)
    small = {label: [] for label in candidates}
    large = {label: [] for label in candidates}
    for _ in range(reps):
        for label, candidate in candidates.items():
            for _ in range(40):
                start = time.perf_counter()
                sample_names(candidate, 10, prefix="tyr", rng=rng)
                small[label].append(time.perf_counter() - start)
            start = time.perf_counter()
            sample_names(candidate, 1000, rng=rng)
            large[label].append(time.perf_counter() - start)
    print(f"\n## Sampling (one thread, medians of {reps} interleaved rounds)")
    for label in candidates:
        print(f"{label:<20} 10 names, prefix 'tyr': {np.median(small[label]) * 1e3:6.2f} ms (target <= 2 ms)"
              f"   1 000 names, one batch: {np.median(large[label]) * 1e3:5.1f} ms (target <= 50 ms)")
    prefixed = sample_names(model, 1000, prefix="tyr", rng=np.random.default_rng(1))
    share = sum(s.name.startswith("tyr") for s in prefixed) / len(prefixed)
    print(f"prefix honoured: {share:.1%} of 1 000 names sampled with prefix 'tyr'")


def novelty(names: list[str], train: set[str], val: set[str]) -> tuple[float, float, float]:
    """Like makemore: the shares of names that are new, in the train file, in the val file."""
    in_train = sum(n in train for n in names) / len(names)
    in_val = sum(n in val and n not in train for n in names) / len(names)
    return 1.0 - in_train - in_val, in_train, in_val


def bench_quality(model: NameModel, seeds: int = 5) -> None:
    train_names, val_names = read_names(train_path()), read_names(val_path())
    print("\n## Quality of the shipped checkpoint (val NLL, nats/char)")
    print(f"{model.config.cell}-{model.config.hidden} × {len(model.members)}"
          + (f" + {model.ngram.order}-gram" if model.ngram is not None else ""))
    parts = {"shipped model": model}
    if model.ngram is not None:
        parts["its networks alone"] = model.with_ngram(None, None)
        parts[f"its {model.ngram.order}-gram alone"] = ngram_alone(model)
    for label, part in parts.items():
        nll = evaluate(part, val_names)
        print(f"{label:<20} {nll:.4f} nats/char ({nll / np.log(2):.4f} bits)")
    train, val = set(train_names), set(val_names)
    splits = np.array([novelty([s.name for s in sample_names(model, 1000, rng=np.random.default_rng(seed))],
                               train, val) for seed in range(seeds)])
    for seed, (new, in_train, in_val) in enumerate(splits):
        print(f"1 000 samples, seed {seed}: {new:.1%} new, {in_train:.1%} in train, {in_val:.1%} in val")
    new, in_train, in_val = splits.mean(axis=0)
    print(f"mean of {seeds}: {new:.2%} new, {in_train:.2%} in train, {in_val:.2%} in val "
          f"(lowest {splits[:, 0].min():.1%}; target >= 97 % new)")


def ngram_alone(model: NameModel) -> NameModel:
    """The model's n-gram on its own: weight 1 at every context length (the networks' factor is p**0 = 1)."""
    return model.with_ngram(model.ngram, Mixing.uniform(1.0, model.ngram.order))


def bench_zoo() -> None:
    """Val NLL, training time and five samples of the model zoo, each trained here from random weights."""
    from model import DEFAULT_TRAINING, train_model
    train_names, val_names = read_names(train_path()), read_names(val_path())
    zoo = [("rnn", 128, 0.0, 3e-3, 1, 0), ("rnn", 128, 0.2, 1e-2, 1, 0), ("lstm", 128, 0.0, 1e-2, 1, 0),
           ("lstm", 64, 0.2, 1.5e-2, 1, 0), ("lstm", 64, 0.2, 1.5e-2, 3, 0), ("lstm", 128, 0.3, 1e-2, 5, 0),
           ("rnn", 128, 0.2, 1e-2, 1, 6), ("lstm", 64, 0.2, 1.5e-2, 3, 6)]
    print("\n## Model zoo: best val NLL (nats/char), trained from scratch on dinos_train, one thread; "
          "five samples (seed 0)")
    for cell, hidden, dropout, lr, members, order in zoo:
        config = replace(DEFAULT_TRAINING, lr=lr)
        result = train_model(train_names, val_names, ModelConfig(cell, hidden, dropout), config, members,
                             ngram_order=order)
        label = f"{cell}-{hidden} dropout {dropout} lr {lr} × {members}"
        label += f" + {order}-gram" if order else ""
        print(f"{label}: {result.val_loss:.4f} in {result.seconds:.1f} s of training; {_five(result.model)}")
        if order and cell == "lstm":
            started = time.perf_counter()
            NGramModel.from_names(train_names, order)
            seconds = time.perf_counter() - started
            alone = ngram_alone(result.model)
            print(f"{order}-gram Kneser–Ney alone: {evaluate(alone, val_names):.4f} in {seconds:.2f} s of "
                  f"counting; {_five(alone)}")


def bench_heldout(folds: int = 5) -> None:
    """NLL on names no part of the model was trained or tuned on: each fifth of the train file in turn.

    Networks (the shipped recipe) and n-gram are trained on the other four fifths; every
    mixing weight is fitted on val, as for the shipped model; the held-out fifth scores them.
    """
    from model import train_model
    train_names, val_names = read_names(train_path()), read_names(val_path())
    order = np.random.default_rng(0).permutation(len(train_names))
    scores: dict[str, list[float]] = {}
    for fold in range(folds):
        held = set(order[fold::folds].tolist())
        rest = [n for i, n in enumerate(train_names) if i not in held]
        networks = train_model(rest, val_names, ngram_order=0).model
        ngram = NGramModel.from_names(rest, 6)
        val = predictions(networks, ngram, val_names)
        test = predictions(networks, ngram, [train_names[i] for i in sorted(held)])
        for label, value in _heldout_scores(val, test).items():
            scores.setdefault(label, []).append(value)
    print(f"\n## Held-out NLL (nats/char): {folds} folds of the train file, 3 × LSTM-64 + 6-gram "
          "trained on the rest, weights fitted on val")
    for label, values in scores.items():
        print(f"{label:<40} {np.mean(values):.4f}   folds: {' '.join(f'{v:.4f}' for v in values)}")


def _heldout_scores(val: tuple[np.ndarray, ...], test: tuple[np.ndarray, ...]) -> dict[str, float]:
    def nll(probs: np.ndarray, targets: np.ndarray) -> float:
        return float(-np.log(probs[np.arange(len(targets)), targets]).mean())

    net, gram, targets, lengths = test
    linear = min(np.linspace(0, 1, 101), key=lambda w: nll((1 - w) * val[0] + w * val[1], val[2]))
    single = fit_mixing(*val[:3], np.zeros_like(val[3]), order=1).weights[0]
    per_length = fit_mixing(*val, order=6)
    return {"networks alone": nll(net, targets), "6-gram alone": nll(gram, targets),
            "linear interpolation, one weight": nll((1 - linear) * net + linear * gram, targets),
            "geometric, one weight": mixture_nll(*test, Mixing.uniform(single, 6)),
            "geometric, weight per context length": mixture_nll(*test, per_length)}


def _five(model: NameModel) -> str:
    samples = sample_names(model, 5, rng=np.random.default_rng(0))
    return ", ".join(s.name if s.complete else f"{s.name}…" for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="*", default=["speed", "quality", "sampling", "ttq"],
                        choices=["speed", "quality", "sampling", "ttq", "zoo", "heldout"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--hidden", default="64,128", help="speed: hidden sizes to time (comma-separated)")
    args = parser.parse_args()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, checkpoint {BASE_CHECKPOINT.name}")
    model = load_checkpoint(BASE_CHECKPOINT)
    if "quality" in args.what:
        bench_quality(model)
    if "sampling" in args.what:
        bench_sampling(model, args.reps)
    if "ttq" in args.what:
        bench_time_to_quality()
    if "speed" in args.what:
        bench_speed(args.reps, [int(h) for h in args.hidden.split(",")])
    if "zoo" in args.what:
        bench_zoo()
    if "heldout" in args.what:
        bench_heldout()


if __name__ == "__main__":
    main()
