"""Command line for the name model: ``python -m model train|finetune|sample|eval|score``.

Exit codes: 0 success, 1 a model/data problem (bad checkpoint, missing corpus), 2 bad usage
(argparse's own convention, also used for invalid names and options), 130 interrupted.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import (
    BASE_CHECKPOINT,
    DEFAULT_MEMBERS,
    DEFAULT_MODEL,
    DEFAULT_TRAINING,
    MIN_NAME_LEN,
    CheckpointError,
    CorpusError,
    FitResult,
    InvalidName,
    ModelConfig,
    NameModel,
    Progress,
    evaluate,
    fine_tune,
    load_checkpoint,
    read_names,
    sample_names,
    save_checkpoint,
    score_name,
    train_model,
    train_path,
    val_path,
)
from .ngram import DEFAULT_ORDER as DEFAULT_NGRAM_ORDER
from .ngram import MAX_ORDER as MAX_NGRAM_ORDER
from .promotion import Losses, decide_promotion, split_holdout
from .strength import DEFAULT_STRENGTH, STRENGTHS, get_strength
from .training import with_overrides

log = logging.getLogger("model")

TRAINED_DIR = Path("var") / "trained"  # where train writes unless told otherwise (git-ignored runtime state)
MAX_SAMPLE_LEN = 256
MIN_FINE_TUNE_NAMES = 5
HOLDOUT_FRACTION = 0.1


def main(argv: list[str] | None = None, prog: str = "dinomodel") -> int:
    """Run one command; ``prog`` is how usage and help name the program (``python -m model``
    passes its own spelling)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.run(args)
    except (InvalidName, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CheckpointError, CorpusError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every real default in ``--help``; options without one (None, a flag) say nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        default = action.default
        nothing = default is None or default is False or default is argparse.SUPPRESS or default == ""
        if nothing or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def build_parser(prog: str = "dinomodel") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="DinoBot's NumPy name model.",
                                     formatter_class=_HelpFormatter)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                              formatter_class=_HelpFormatter)

    p = command("train", "train a model from random weights and save a checkpoint")
    p.add_argument("--train", type=Path, default=None, metavar="FILE", help=f"names file (default: {train_path()})")
    p.add_argument("--val", type=Path, default=None, metavar="FILE", help=f"validation names (default: {val_path()})")
    _out_args(p, "checkpoint to write (default: a new file in var/trained/, named by the time)")
    p.add_argument("--cell", choices=["rnn", "lstm"], default=DEFAULT_MODEL.cell,
                   help="recurrent cell: the seed's tanh RNN or an LSTM")
    p.add_argument("--hidden", type=int, default=DEFAULT_MODEL.hidden, help="hidden units per network")
    p.add_argument("--dropout", type=float, default=DEFAULT_MODEL.dropout, help="dropout before the output layer")
    p.add_argument("--members", type=int, default=DEFAULT_MEMBERS, help="networks to ensemble")
    p.add_argument("--epochs", type=int, default=DEFAULT_TRAINING.epochs, help="most epochs per network")
    p.add_argument("--lr", type=float, default=DEFAULT_TRAINING.lr, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=DEFAULT_TRAINING.batch_size, help="names per mini-batch")
    p.add_argument("--patience", type=int, default=DEFAULT_TRAINING.patience,
                   help="stop after this many epochs without a better val loss")
    p.add_argument("--clip-mode", choices=["value", "norm"], default=DEFAULT_TRAINING.clip_mode,
                   help="clip each gradient value to [-5, 5] (the seed's rule) or the global norm to 5")
    p.add_argument("--seed", type=int, default=DEFAULT_TRAINING.seed, help="seed of the first network")
    p.add_argument("--time-budget", type=float, default=None, help="seconds of training per member (default: no limit)")
    p.add_argument("--ngram-order", type=int, default=DEFAULT_NGRAM_ORDER,
                   help="mix in a Kneser–Ney n-gram of this order counted on the train file "
                        "(0: the networks alone, e.g. the seed's plain RNN)")
    p.add_argument("--plain-rnn", action="store_true",
                   help="the seed's model: one tanh RNN, nothing mixed in (sets --cell rnn --members 1 "
                        "--ngram-order 0 --dropout 0, whatever they say)")
    p.set_defaults(run=cmd_train)

    p = command("finetune", "fine-tune a model on a server's names and save a copy")
    p.add_argument("--names", type=Path, required=True, metavar="FILE",
                   help="the names to learn, one a line; a tenth (at least 2) is held out to judge the result")
    _checkpoint_arg(p, "the model to start from")
    p.add_argument("--strength", choices=list(STRENGTHS), default=DEFAULT_STRENGTH,
                   help="how strongly the names' style shows: "
                        + "; ".join(s.describe() for s in STRENGTHS.values()))
    _out_args(p, "checkpoint to write (required)")
    p.add_argument("--replay", type=Path, default=None, metavar="FILE",
                   help=f"names replayed so the base style is kept (default: {train_path()}; "
                        f"without it, the model's own samples)")
    p.add_argument("--val", type=Path, default=None, metavar="FILE",
                   help=f"base validation names (default: {val_path()})")
    p.add_argument("--tolerance", type=float, default=None,
                   help="how much worse (nats/char) the base names may get for the promotion verdict "
                        "(default: the strength's: " + ", ".join(f"{s.name} {s.tolerance:g}"
                                                                  for s in STRENGTHS.values()) + ")")
    p.add_argument("--seed", type=int, default=0, help="seed of the fine-tune")
    p.set_defaults(run=cmd_finetune)

    p = command("sample", "invent names, one a line")
    _checkpoint_arg(p)
    p.add_argument("-n", type=int, default=10, help="how many names")
    p.add_argument("--prefix", default="", help="every name starts with these letters")
    p.add_argument("--temperature", type=float, default=1.0, help="below 1: safer; above 1: wilder")
    p.add_argument("--top-k", type=int, default=None, help="draw only from the k likeliest letters (default: all)")
    p.add_argument("--max-len", type=int, default=32, help="length cap; cut names are marked with '…'")
    p.add_argument("--seed", type=int, default=None, help="make the output repeatable (default: different every run)")
    p.add_argument("--new-only", action="store_true", help="skip names in the train and val files")
    p.set_defaults(run=cmd_sample)

    p = command("eval", "mean NLL per character of a names file (nats and bits)")
    _checkpoint_arg(p)
    p.add_argument("--names", type=Path, default=None, metavar="FILE", help=f"names file (default: {val_path()})")
    p.set_defaults(run=cmd_eval)

    p = command("score", "how dinosaur-like a name is (NLL per char; lower is better)")
    _checkpoint_arg(p)
    p.add_argument("name", nargs="+")
    p.set_defaults(run=cmd_score)
    return parser


def _checkpoint_arg(p: argparse.ArgumentParser, what: str = "checkpoint to use") -> None:
    p.add_argument("--checkpoint", type=Path, default=BASE_CHECKPOINT, metavar="PATH",
                   help=f"{what} (default: the shipped model, {BASE_CHECKPOINT})")


def _out_args(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--out", type=Path, default=None, metavar="PATH", help=help)
    p.add_argument("--replace-shipped", action="store_true",
                   help=f"write over the shipped model ({BASE_CHECKPOINT}), which the bot and every "
                        f"command here use by default")


def _out_path(args: argparse.Namespace, default: Path | None) -> Path:
    """Where to save: never the shipped checkpoint by accident (it is tracked and used by default)."""
    shipped = BASE_CHECKPOINT.resolve()
    if args.replace_shipped:
        if args.out is not None and args.out.resolve() != shipped:
            raise ValueError(f"--replace-shipped writes {BASE_CHECKPOINT}; drop --out {args.out} or the flag")
        return BASE_CHECKPOINT
    if args.out is None:
        if default is None:
            raise ValueError("say where to save the new model: --out PATH")
        return default
    if args.out.resolve() == shipped:
        raise ValueError(f"--out {args.out} is the shipped model; to replace it, pass --replace-shipped")
    return args.out


def _timestamped(kind: str) -> Path:
    return TRAINED_DIR / f"{kind}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.npz"


def _saved(path: Path) -> str:
    if path == BASE_CHECKPOINT:
        return f"saved {path} (the shipped model, replaced)"
    return f"saved {path} (the shipped {BASE_CHECKPOINT.name} is unchanged)"


# --------------------------------------------------------------------------- train and finetune

def cmd_train(args: argparse.Namespace) -> int:
    # Everything that can be refused is refused before the "training …" line.
    out = _out_path(args, _timestamped("base"))
    if args.plain_rnn:
        args.cell, args.members, args.ngram_order, args.dropout = "rnn", 1, 0, 0.0
    model_config = ModelConfig(args.cell, args.hidden, args.dropout)
    train_config = with_overrides(DEFAULT_TRAINING, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                  patience=args.patience, clip_mode=args.clip_mode, seed=args.seed,
                                  time_budget=args.time_budget)
    if args.members < 1:
        raise ValueError(f"--members must be at least 1, not {args.members}")
    if not 0 <= args.ngram_order <= MAX_NGRAM_ORDER:
        raise ValueError(f"--ngram-order must be 0–{MAX_NGRAM_ORDER}, not {args.ngram_order}")
    train_names = read_names(args.train or train_path())
    val_names = read_names(args.val or val_path())
    log.info("training %d × %s-%d on %d names, validating on %d", args.members, args.cell, args.hidden,
             len(train_names), len(val_names))
    result = _with_progress(lambda progress, stop: train_model(train_names, val_names, model_config, train_config,
                                                               args.members, progress=progress, should_stop=stop,
                                                               ngram_order=args.ngram_order))
    if result.model.ngram is not None:
        log.info("mixed with a %d-gram, weight per matched context length %s (fitted on the val file)",
                 result.model.ngram.order, " ".join(f"{w:.2f}" for w in result.model.mixing.weights))
    save_checkpoint(result.model, out)
    log.info("val NLL %.4f nats/char (%.4f bits) after %.1f s at %s chars/s; %s", result.val_loss,
             result.val_loss / math.log(2), result.seconds, f"{result.chars_per_sec:,.0f}", _saved(out))
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    out = _out_path(args, None)
    strength = get_strength(args.strength)
    tolerance = strength.tolerance if args.tolerance is None else args.tolerance
    if not math.isfinite(tolerance):
        raise ValueError(f"--tolerance must be a finite number, not {tolerance}")
    strength = strength.within(args.tolerance)
    names = read_names(args.names)
    if len(names) < MIN_FINE_TUNE_NAMES:
        raise ValueError(f"{args.names} holds {len(names)} names; fine-tuning needs at least "
                         f"{MIN_FINE_TUNE_NAMES} (2 are held out to judge the result)")
    model = load_checkpoint(args.checkpoint)
    base_val = read_names(args.val or val_path())
    replay, replay_from = _replay_names(args.replay)
    tune, held = split_holdout(names, HOLDOUT_FRACTION, 2)
    log.info("fine-tuning %d × %s-%d from %s on %d names (%d held out to judge it), strength %s, replaying %s",
             len(model.members), model.config.cell, model.config.hidden, args.checkpoint, len(tune), len(held),
             strength.describe(), replay_from)
    result = _with_progress(lambda progress, stop: fine_tune(model, tune, held, replay_names=replay,
                                                             progress=progress, should_stop=stop,
                                                             strength=strength, seed=args.seed,
                                                             base_names=base_val, held_names=held))
    if "mixing_scale" in result.model.metadata:
        log.info("n-gram weights × %.3g of the base model's: as far down as a budget of %g on the base "
                 "validation names allows", result.model.metadata["mixing_scale"], strength.budget)
    _report_verdict(model, result, held, base_val, tolerance)
    save_checkpoint(result.model, out)
    log.info("%s", _saved(out))
    return 0


def _replay_names(path: Path | None) -> tuple[list[str] | None, str]:
    """(names, description): the given file, else the train file, else the model's own samples."""
    if path is not None:
        return read_names(path), str(path)
    if train_path().is_file():
        return read_names(train_path()), str(train_path())
    return None, "the model's own samples (no train file found)"


def _report_verdict(before: NameModel, result: FitResult, held: Sequence[str], base_val: Sequence[str],
                    tolerance: float) -> None:
    current = Losses(base=evaluate(before, base_val), server=evaluate(before, held))
    new = Losses(base=evaluate(result.model, base_val), server=evaluate(result.model, held))
    log.info("held-out names %.4f → %.4f nats/char; base validation names %.4f → %.4f", current.server,
             new.server, current.base, new.base)
    verdict = decide_promotion(current, new, tolerance)
    log.info("the promotion rule says: %s", verdict.reason)


def _with_progress(run: Callable[[Callable[[Progress], None], Callable[[], bool]], FitResult]) -> FitResult:
    """Run a training job with a progress line per epoch and a clean Ctrl+C (the job sees a stop flag)."""
    stop = threading.Event()
    try:
        return run(_print_progress, stop.is_set)
    except KeyboardInterrupt:
        stop.set()
        raise


def _print_progress(p: Progress) -> None:
    log.info("member %d/%d epoch %2d/%d  loss %.4f  val %.4f (best %.4f)  %s chars/s  %3.0f%%  ETA %.0f s",
             p.member + 1, p.members, p.epoch, p.epochs, p.train_loss, p.val_loss, p.best_val_loss,
             f"{p.chars_per_sec:,.0f}", 100 * p.fraction, p.eta)


# --------------------------------------------------------------------------- using a model

def cmd_sample(args: argparse.Namespace) -> int:
    if not MIN_NAME_LEN <= args.max_len <= MAX_SAMPLE_LEN:
        raise ValueError(f"--max-len must be between {MIN_NAME_LEN} (the shortest name) and {MAX_SAMPLE_LEN}, "
                         f"not {args.max_len}")
    model = load_checkpoint(args.checkpoint)
    avoid: set[str] = set()
    if args.new_only:
        avoid = set(read_names(train_path())) | set(read_names(val_path()))
    rng = np.random.default_rng(args.seed)
    samples = sample_names(model, args.n, prefix=args.prefix, temperature=args.temperature, top_k=args.top_k,
                           max_len=args.max_len, avoid=avoid, rng=rng)
    for s in samples:
        print(s.name if s.complete else f"{s.name}…")
    _report_novelty([s.name for s in samples])
    if len(samples) < args.n:
        print(f"only {len(samples)} distinct names found; try a higher temperature or shorter prefix",
              file=sys.stderr)
    return 0


def _report_novelty(names: list[str]) -> None:
    """Like makemore: how many samples are new rather than copies of the corpus (to stderr)."""
    try:
        train, val = set(read_names(train_path())), set(read_names(val_path()))
    except CorpusError:
        return  # no corpus here (an installed bot): nothing to compare with
    in_train = sum(n in train for n in names)
    in_val = sum(n in val for n in names)
    print(f"{len(names)} names: {len(names) - in_train - in_val} new, {in_train} in train, {in_val} in val",
          file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    model = load_checkpoint(args.checkpoint)
    path = args.names or val_path()
    names = read_names(path)
    nll = evaluate(model, names)
    print(f"{path}: {len(names)} names, NLL {nll:.4f} nats/char = {nll / math.log(2):.4f} bits/char")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    model = load_checkpoint(args.checkpoint)
    for raw in args.name:
        nll = score_name(model, raw)
        print(f"{raw.strip().lower()}\t{nll:.4f} nats/char")
    return 0


if __name__ == "__main__":
    sys.exit(main())
