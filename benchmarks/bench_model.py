"""Benchmarks for the NumPy name model: training speed, time to quality, sampling, quality.

Run from the project root (one thread for every BLAS, so the figures compare like with like):

    .venv/bin/python benchmarks/bench_model.py            # everything (about 2 minutes)
    .venv/bin/python benchmarks/bench_model.py speed      # training throughput only
    .venv/bin/python benchmarks/bench_model.py zoo        # val NLL of the model zoo (~1 min)

Training throughput is compared, in the same run, against
  * the seed's algorithm (one name per step, plain SGD, per-value clipping, float64 as in the
    original exercise), reimplemented below at the same hidden size, and
  * PyTorch's nn.RNN / nn.LSTM via ../shared/bench/torch_rnn_reference.py, when a Python with
    torch is found ($TORCH_PYTHON, else ../torchvenv/bin/python). torch is never a dependency.
Figures are medians of interleaved repetitions; ratios are ours / reference.
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
from model.training import Adam, EncodedCorpus, clip_gradients, run_epochs  # noqa: E402
from model.vocab import encode  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TORCH_SCRIPT = ROOT.parent / "shared" / "bench" / "torch_rnn_reference.py"


# --------------------------------------------------------------------------- training speed

def ours_chars_per_sec(cell: str, hidden: int, names: list[str], steps: int, rng) -> float:
    model = CharModel.create(ModelConfig(cell, hidden), np.random.default_rng(0))
    corpus, opt = EncodedCorpus(names), Adam(model.params, 3e-3)
    batches = [b for _ in range(4) for b in corpus.batches(32, rng)][: steps + 20]
    for inputs, targets, mask in batches[:20]:  # warm-up
        _train_step(model, opt, inputs, targets, mask)
    chars, start = 0, time.perf_counter()
    for inputs, targets, mask in batches[20:]:
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


def torch_chars_per_sec(cells: str, reps: int) -> dict[str, float]:
    python = torch_python()
    if python is None:
        return {}
    out = subprocess.run([python, str(TORCH_SCRIPT), "throughput", "--cells", cells, "--reps", str(reps)],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return {m.group(1): float(m.group(2).replace(",", ""))
            for m in re.finditer(r"^(\w+)-\d+: median ([\d,]+) chars/s", out, re.M)}


def bench_speed(reps: int) -> None:
    names = read_names(train_path())
    rng = np.random.default_rng(0)
    ours = {"rnn": [], "lstm": []}
    seed = []
    for _ in range(reps):  # interleaved, so drifting machine load hits every candidate alike
        for cell in ours:
            ours[cell].append(ours_chars_per_sec(cell, 128, names, 200, rng))
        seed.append(seed_chars_per_sec(128, names, 300, rng))
    torch = torch_chars_per_sec("rnn,lstm", reps)
    print("\n## Training throughput, hidden 128, batch 32, one thread (predicted chars/s, median of "
          f"{reps})")
    print(f"seed's one-name SGD loop (float64): {np.median(seed):>10,.0f}")
    for cell, rates in ours.items():
        line = f"ours {cell:<4} (float32):             {np.median(rates):>10,.0f}"
        if cell == "rnn":
            line += f"   {np.median(rates) / np.median(seed):.1f}× the seed's loop"
        if cell in torch:
            line += f"   {np.median(rates) / torch[cell]:.2f}× PyTorch {cell} ({torch[cell]:,.0f})"
        print(line)
    if not torch:
        print("(PyTorch not found: set TORCH_PYTHON to a Python with torch for the ratio)")


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

def bench_sampling(model: NameModel) -> None:
    rng = np.random.default_rng(0)
    small, large = [], []
    for _ in range(5):
        for _ in range(40):
            start = time.perf_counter()
            sample_names(model, 10, prefix="tyr", rng=rng)
            small.append(time.perf_counter() - start)
        start = time.perf_counter()
        sample_names(model, 1000, rng=rng)
        large.append(time.perf_counter() - start)
    print("\n## Sampling with the shipped model (one thread)")
    print(f"10 names, prefix 'tyr': median {np.median(small) * 1e3:.2f} ms (target <= 2 ms)")
    print(f"1 000 names, one batch: median {np.median(large) * 1e3:.1f} ms (target <= 50 ms)")


def bench_quality(model: NameModel) -> None:
    train_names, val_names = read_names(train_path()), read_names(val_path())
    nll = evaluate(model, val_names)
    samples = [s.name for s in sample_names(model, 1000, rng=np.random.default_rng(0))]
    known_train, known_val = set(train_names), set(val_names)
    in_train = sum(n in known_train for n in samples)
    in_val = sum(n in known_val for n in samples)
    print("\n## Quality of the shipped checkpoint")
    print(f"val NLL {nll:.4f} nats/char ({nll / np.log(2):.4f} bits) — "
          f"{model.config.cell}-{model.config.hidden} × {len(model.members)}")
    print(f"1 000 samples: {in_train / 10:.1f}% in train, {in_val / 10:.1f}% in val, "
          f"{(1000 - in_train - in_val) / 10:.1f}% new")


def bench_zoo() -> None:
    """Val NLL of the model zoo, each trained here from random weights (about a minute)."""
    from model import DEFAULT_TRAINING, train_model
    train_names, val_names = read_names(train_path()), read_names(val_path())
    zoo = [("rnn", 128, 0.0, 3e-3, 1), ("rnn", 128, 0.2, 1e-2, 1), ("lstm", 128, 0.0, 1e-2, 1),
           ("lstm", 64, 0.2, 1.5e-2, 1), ("lstm", 64, 0.2, 1.5e-2, 3), ("lstm", 128, 0.3, 1e-2, 5)]
    print("\n## Model zoo: best val NLL (nats/char), trained from scratch on dinos_train, one thread")
    for cell, hidden, dropout, lr, members in zoo:
        config = replace(DEFAULT_TRAINING, lr=lr)
        result = train_model(train_names, val_names, ModelConfig(cell, hidden, dropout), config, members)
        print(f"{cell}-{hidden} dropout {dropout} lr {lr} × {members}: {result.val_loss:.4f} "
              f"in {result.seconds:.1f} s of training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="*", default=["speed", "quality", "sampling", "ttq"],
                        choices=["speed", "quality", "sampling", "ttq", "zoo"])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, checkpoint {BASE_CHECKPOINT.name}")
    model = load_checkpoint(BASE_CHECKPOINT)
    if "quality" in args.what:
        bench_quality(model)
    if "sampling" in args.what:
        bench_sampling(model)
    if "ttq" in args.what:
        bench_time_to_quality()
    if "speed" in args.what:
        bench_speed(args.reps)
    if "zoo" in args.what:
        bench_zoo()


if __name__ == "__main__":
    main()
