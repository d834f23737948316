"""Command line for the name model: ``python -m model train|sample|eval|score``.

Exit codes: 0 success, 1 a model/data problem (bad checkpoint, missing corpus), 2 bad usage
(argparse's own convention, also used for invalid names and options), 130 interrupted.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
from pathlib import Path

import numpy as np

from . import (
    BASE_CHECKPOINT,
    DEFAULT_MEMBERS,
    DEFAULT_MODEL,
    DEFAULT_TRAINING,
    CheckpointError,
    CorpusError,
    InvalidName,
    ModelConfig,
    Progress,
    load_checkpoint,
    read_names,
    sample_names,
    save_checkpoint,
    score_name,
    train_model,
    train_path,
    val_path,
)
from .ensemble import evaluate
from .ngram import DEFAULT_ORDER as DEFAULT_NGRAM_ORDER
from .ngram import MAX_ORDER as MAX_NGRAM_ORDER
from .training import with_overrides

log = logging.getLogger("model")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description="DinoBot's NumPy name model.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model from random weights and save a checkpoint")
    p.add_argument("--train", type=Path, default=None, help="names file (default: $DINO_CORPUS_DIR/dinos_train.txt)")
    p.add_argument("--val", type=Path, default=None, help="validation names (default: $DINO_CORPUS_DIR/dinos_val.txt)")
    p.add_argument("--out", type=Path, default=BASE_CHECKPOINT, help="checkpoint to write (default: the shipped one)")
    p.add_argument("--cell", choices=["rnn", "lstm"], default=DEFAULT_MODEL.cell,
                   help=f"recurrent cell: the seed's tanh RNN or an LSTM (default {DEFAULT_MODEL.cell})")
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
    p.add_argument("--time-budget", type=float, default=None, help="seconds of training per member")
    p.add_argument("--ngram-order", type=int, default=DEFAULT_NGRAM_ORDER,
                   help=f"mix in a Kneser–Ney n-gram of this order counted on the train file "
                        f"(default {DEFAULT_NGRAM_ORDER}; 0: the networks alone, e.g. the seed's plain RNN)")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("sample", help="invent names, one a line")
    _checkpoint_arg(p)
    p.add_argument("-n", type=int, default=10, help="how many names (default 10)")
    p.add_argument("--prefix", default="", help="every name starts with these letters")
    p.add_argument("--temperature", type=float, default=1.0, help="below 1: safer; above 1: wilder")
    p.add_argument("--top-k", type=int, default=None, help="draw only from the k likeliest letters")
    p.add_argument("--max-len", type=int, default=32, help="length cap; cut names are marked with '…'")
    p.add_argument("--seed", type=int, default=None, help="make the output repeatable")
    p.add_argument("--new-only", action="store_true", help="skip names in the train and val files")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser("eval", help="mean NLL per character of a names file (nats and bits)")
    _checkpoint_arg(p)
    p.add_argument("--names", type=Path, default=None, help="names file (default: the val file)")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("score", help="how dinosaur-like a name is (NLL per char; lower is better)")
    _checkpoint_arg(p)
    p.add_argument("name", nargs="+")
    p.set_defaults(run=cmd_score)
    return parser


def _checkpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, default=BASE_CHECKPOINT,
                   help="checkpoint to use (default: the shipped base model)")


def cmd_train(args: argparse.Namespace) -> int:
    train_names = read_names(args.train or train_path())
    val_names = read_names(args.val or val_path())
    model_config = ModelConfig(args.cell, args.hidden, args.dropout)
    train_config = with_overrides(DEFAULT_TRAINING, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                  patience=args.patience, clip_mode=args.clip_mode, seed=args.seed,
                                  time_budget=args.time_budget)
    if not 0 <= args.ngram_order <= MAX_NGRAM_ORDER:
        raise ValueError(f"--ngram-order must be 0–{MAX_NGRAM_ORDER}, not {args.ngram_order}")
    log.info("training %d × %s-%d on %d names, validating on %d", args.members, args.cell, args.hidden,
             len(train_names), len(val_names))
    stop = threading.Event()
    try:
        result = train_model(train_names, val_names, model_config, train_config, args.members,
                             progress=_print_progress, should_stop=stop.is_set, ngram_order=args.ngram_order)
    except KeyboardInterrupt:
        stop.set()
        raise
    if result.model.ngram is not None:
        log.info("mixed with a %d-gram, weight per matched context length %s (fitted on the val file)",
                 result.model.ngram.order, " ".join(f"{w:.2f}" for w in result.model.mixing.weights))
    save_checkpoint(result.model, args.out)
    log.info("val NLL %.4f nats/char (%.4f bits) after %.1f s at %s chars/s; saved %s", result.val_loss,
             result.val_loss / math.log(2), result.seconds, f"{result.chars_per_sec:,.0f}", args.out)
    return 0


def _print_progress(p: Progress) -> None:
    log.info("member %d/%d epoch %2d/%d  loss %.4f  val %.4f (best %.4f)  %s chars/s  %3.0f%%  ETA %.0f s",
             p.member + 1, p.members, p.epoch, p.epochs, p.train_loss, p.val_loss, p.best_val_loss,
             f"{p.chars_per_sec:,.0f}", 100 * p.fraction, p.eta)


def cmd_sample(args: argparse.Namespace) -> int:
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
