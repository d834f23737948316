"""Style strength: how visible a server's fine-tune is in its names, and what it costs the base style.

Run from the project root (about 75 s here; one BLAS thread like the other benchmarks):

    .venv/bin/python benchmarks/bench_finetune.py
    .venv/bin/python benchmarks/bench_finetune.py --seeds 1 --themes ending   # a quick look
    .venv/bin/python benchmarks/bench_finetune.py --names 20   # servers with 20 names

Three themed "servers", each fine-tuned at every strength (model/strength.py):

* ending     100 invented names ending in "-zilla" on real stems (the train file's "-saurus"
             names without "saurus": tyranno-zilla); 80 fine-tuned on, 20 held out.
* beginning  100 invented names starting with "zorbo-" on real tails (a train name after its
             first syllable: velo|ciraptor -> zorbociraptor); 80 fine-tuned on, 20 held out.
* ceratops   the real "-ceratops" family (60 names in train + val). A base model is trained here,
             with the shipped recipe, on the train file *without* them (validated on the val file
             without them), so the family is new to it; 40 fine-tuned on, 20 held out. That model
             lives in memory only: it is never saved, so it cannot leak into the shipped one.

For each theme and strength, medians over ``--seeds`` fine-tunes (seeds 0, 1, …):

* uptake     share of 1,000 samples (temperature 1, the server's own names avoided, as
             /dinoname does) that carry the theme;
* held NLL   mean NLL per character of the 20 held-out theme names (never trained on);
* Δ base val change in val NLL on data/dinos_val.txt (for ceratops: without the family);
* seconds    of the fine-tune itself;
* promoted   how many of the fine-tunes the promotion rule (model/promotion.py) would promote at
             the strength's own tolerance, the held-out theme names standing for the server's.

Replay is the base corpus (the train file, minus the family for ceratops), as the bot does when
``DINOBOT_BASE_CORPUS`` is set, and each strength's base budget is spent on the val file, as
``python -m model finetune`` and the bot (``DINOBOT_BASE_VALIDATION``) do. The default strength
is also run the way a bot without a corpus works: replaying the base model's own samples and
spending the budget on base-model samples. Example names are the first 8 samples of seed 0's
model, printed as one Markdown table per theme.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

from model import (  # noqa: E402
    BASE_CHECKPOINT,
    Losses,
    NameModel,
    decide_promotion,
    evaluate,
    fine_tune,
    load_checkpoint,
    read_names,
    sample_names,
    train_model,
    train_path,
    val_path,
)
from model.strength import DEFAULT_STRENGTH, STRENGTHS, Strength  # noqa: E402

VOWELS = set("aeiouy")
NEW_ENDING, NEW_BEGINNING, FAMILY = "zilla", "zorbo", "ceratops"
HELD_OUT = 20


@dataclass
class Theme:
    name: str
    carries: Callable[[str], bool]
    tune: list[str]  # the server's names the model is fine-tuned on
    held: list[str]  # theme names it never sees: their NLL says whether the style was learnt
    base: NameModel
    replay: list[str]  # the base corpus the fine-tune replays
    val: list[str]  # base validation names: their NLL says what the style cost


# --------------------------------------------------------------------------- themed corpora

def ending_names(train: list[str], known: set[str], rng: np.random.Generator) -> list[str]:
    stems = sorted({n[: -len("saurus")] for n in train if n.endswith("saurus") and len(n) >= 9})
    names = [s + NEW_ENDING for s in stems if s + NEW_ENDING not in known]
    return list(rng.permutation(names))


def beginning_names(train: list[str], known: set[str], rng: np.random.Generator) -> list[str]:
    names = set()
    for n in train:
        k = next((k for k in range(3, len(n) - 3) if n[k] not in VOWELS and n[k + 1] in VOWELS), None)
        if k is not None and len(NEW_BEGINNING + n[k:]) <= 32:
            names.add(NEW_BEGINNING + n[k:])
    return list(rng.permutation(sorted(names - known)))


def build_themes(wanted: list[str], base: NameModel, train: list[str], val: list[str]) -> list[Theme]:
    known = set(train) | set(val)
    # "New" has to be true of the corpus, not assumed.
    assert not any(n.endswith(NEW_ENDING) or n.startswith(NEW_BEGINNING) for n in known)
    rng = np.random.default_rng(2024)
    themes = []
    if "ending" in wanted:
        names = ending_names(train, known, rng)[: 80 + HELD_OUT]
        themes.append(Theme("ending", lambda s: s.endswith(NEW_ENDING), names[HELD_OUT:], names[:HELD_OUT],
                            base, train, val))
    if "beginning" in wanted:
        names = beginning_names(train, known, rng)[: 80 + HELD_OUT]
        themes.append(Theme("beginning", lambda s: s.startswith(NEW_BEGINNING), names[HELD_OUT:],
                            names[:HELD_OUT], base, train, val))
    if "ceratops" in wanted:
        family = list(rng.permutation(sorted(n for n in known if FAMILY in n)))
        train_rest = [n for n in train if FAMILY not in n]
        val_rest = [n for n in val if FAMILY not in n]
        started = time.perf_counter()
        fit = train_model(train_rest, val_rest)  # the shipped recipe, in memory only
        print(f"(base model without the {len(family)} '-{FAMILY}' names: val NLL {fit.val_loss:.4f} "
              f"on the val file without them, trained in {time.perf_counter() - started:.0f} s)")
        themes.append(Theme("ceratops", lambda s: s.endswith(FAMILY), family[HELD_OUT:], family[:HELD_OUT],
                            fit.model, train_rest, val_rest))
    return themes


# --------------------------------------------------------------------------- measuring

@dataclass
class Measure:
    uptake: float
    held_nll: float
    val_nll: float
    seconds: float
    examples: list[str]


def measure(model: NameModel, theme: Theme, samples: int, seconds: float = 0.0) -> Measure:
    drawn = [s.name for s in sample_names(model, samples, avoid=set(theme.tune) | set(theme.held), rng=12345)]
    return Measure(sum(map(theme.carries, drawn)) / len(drawn), evaluate(model, theme.held),
                   evaluate(model, theme.val), seconds, drawn[:8])


@dataclass(frozen=True)
class Run:
    """One row of the table: a strength, what it replays, and what its budget is measured on."""

    strength: Strength
    self_replay: bool = False  # the bot without a corpus: replay base samples, judge on them too

    @property
    def label(self) -> str:
        return self.strength.name + (", self-replay, budget on samples" if self.self_replay else "")


def run_strength(theme: Theme, run: Run, seed: int, samples: int) -> Measure:
    started = time.perf_counter()
    # The val file is what `python -m model finetune` and the bot (DINOBOT_BASE_VALIDATION) judge
    # forgetting on, so it is what the budget is spent on. A bot without a corpus has only the base
    # model's samples, to replay and to judge on: fine_tune draws both itself when given None.
    fit = fine_tune(theme.base, theme.tune, theme.val, replay_names=None if run.self_replay else theme.replay,
                    strength=run.strength, seed=seed, base_names=None if run.self_replay else theme.val,
                    held_names=theme.held)
    return measure(fit.model, theme, samples, time.perf_counter() - started)


def bench(themes: list[Theme], seeds: int, samples: int) -> None:
    default = STRENGTHS[DEFAULT_STRENGTH]
    runs = [Run(s) for s in STRENGTHS.values()] + [Run(default, self_replay=True)]
    sizes = ", ".join(f"{t.name} {len(t.tune)}" for t in themes)
    print(f"\n## Style strength: medians of {seeds} fine-tune(s); uptake among {samples:,} samples; "
          f"names fine-tuned on: {sizes}")
    width = max(len(r.label) for r in runs) + 2
    print(f"{'theme':<10} {'strength':<{width}} {'uptake':>7} {'held NLL':>9} {'Δ base val':>11} {'seconds':>8} "
          f"{'promoted':>9}")
    examples: dict[str, list[tuple[str, list[str]]]] = {}
    for theme in themes:
        before = measure(theme.base, theme, samples)
        print(f"{theme.name:<10} {'before (base model)':<{width}} {before.uptake:>6.1%} {before.held_nll:>9.3f} "
              f"{0:>+11.3f} {'—':>8} {'—':>9}")
        examples[theme.name] = [("before", before.examples)]
        for run in runs:
            results = [run_strength(theme, run, seed, samples) for seed in range(seeds)]
            uptake, held, val, seconds = (float(np.median([getattr(r, field) for r in results]))
                                          for field in ("uptake", "held_nll", "val_nll", "seconds"))
            promoted = sum(decide_promotion(Losses(before.val_nll, before.held_nll), Losses(r.val_nll, r.held_nll),
                                            run.strength.tolerance).promote for r in results)
            print(f"{theme.name:<10} {run.label:<{width}} {uptake:>6.1%} {held:>9.3f} {val - before.val_nll:>+11.3f} "
                  f"{seconds:>8.1f} {f'{promoted}/{len(results)}':>9}")
            examples[theme.name].append((run.label, results[0].examples))
    print("\n## Example names (the first samples of seed 0's model; the server's own names avoided)")
    for theme, rows in examples.items():
        print(example_table(theme, rows))


def example_table(theme: str, rows: list[tuple[str, list[str]]]) -> str:
    """The example names of one theme as a Markdown table, one model a row.

    Markdown rather than aligned columns: a label such as "normal, self-replay" holds a comma and
    a space, and the old column layout was once read back as a figures row of the table above
    ("normal, self-replay | 17.7%  1.239 …" in the README).
    """
    lines = [f"\n*{theme}*\n", "| model | names |", "| --- | --- |"]
    lines += [f"| {label} | {', '.join(names)} |" for label, names in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--themes", nargs="+", default=["ending", "beginning", "ceratops"],
                        choices=["ending", "beginning", "ceratops"])
    parser.add_argument("--seeds", type=int, default=3, help="fine-tunes per theme and strength (default 3)")
    parser.add_argument("--samples", type=int, default=1000, help="samples per model for the uptake (default 1000)")
    parser.add_argument("--names", type=int, default=None,
                        help="fine-tune on only the first N of each theme's names (a smaller server)")
    args = parser.parse_args()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, checkpoint {BASE_CHECKPOINT.name}")
    for s in STRENGTHS.values():
        print(f"strength {s.describe()}")
    started = time.perf_counter()
    train, val = read_names(train_path()), read_names(val_path())
    themes = build_themes(args.themes, load_checkpoint(BASE_CHECKPOINT), train, val)
    for theme in themes:
        theme.tune = theme.tune[: args.names]
    bench(themes, args.seeds, args.samples)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
