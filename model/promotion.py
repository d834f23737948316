"""Whether a fine-tuned model should replace the one a server has: the promotion rule.

A fine-tune is judged on two sets of names, each scored by the current and the new model:

* the **base validation names** (names the base model was selected on, or samples of it): the
  new model may be worse on them by at most ``tolerance`` nats per character. That is the price
  of a visible style, and the tolerance caps it.
* the **server's held-out names** (its own names, kept out of the fine-tune): the new model must
  not be worse on them. A fine-tune that did not learn the server's style is not worth any loss.

A loss that is NaN or infinite (on either set, for either model) never promotes: it means the
training diverged or the scoring is broken, and the model that serves now is kept. Differences
within ``SLACK`` count as equal, so a float rounding in a sum cannot decide a verdict: equal
losses promote, and so does a base loss exactly ``tolerance`` worse.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Sequence

SLACK = 1e-9  # nats per character


@dataclass(frozen=True)
class Losses:
    """Mean NLL per character of one model on the two validation sets."""

    base: float  # the base validation names
    server: float  # the server's held-out names


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str  # one sentence, for the admin and the records


def decide_promotion(current: Losses, new: Losses, tolerance: float) -> Verdict:
    """Promote ``new`` over ``current``? (The rule is in the module docstring.)

    ``tolerance`` (nats per character) must be finite; 0 means the base names may not get worse
    at all, a negative value demands they improve.
    """
    if not math.isfinite(tolerance):
        raise ValueError(f"the promotion tolerance must be a finite number, not {tolerance}")
    for who, losses in (("current", current), ("new", new)):
        for field in ("base", "server"):
            value = getattr(losses, field)
            if not math.isfinite(value):
                return Verdict(False, f"Kept the current model: the {who} model's loss on the "
                                      f"{_SETS[field]} is {value}.")
    server = f"{current.server:.3f} → {new.server:.3f}"
    base = f"{current.base:.3f} → {new.base:.3f}"
    if new.server > current.server + SLACK:
        return Verdict(False, f"Kept the current model: the new one is worse on the server's "
                              f"held-out names ({server}).")
    if new.base > current.base + tolerance + SLACK:
        return Verdict(False, f"Kept the current model: the new one lost too much on the base names "
                              f"({base}, at most {tolerance:g} worse allowed).")
    return Verdict(True, f"Promoted: server's held-out names {server}, base names {base} "
                         f"(at most {tolerance:g} worse allowed).")


_SETS = {"base": "base names", "server": "server's held-out names"}


def split_holdout(names: Sequence[str], fraction: float, minimum: int) -> tuple[list[str], list[str]]:
    """(train, held_out): the server's names a fine-tune learns from, and those it is judged on.

    The held-out names are those with the smallest CRC-32: a hash, not a random draw, so the
    same names split the same way everywhere (the bot and ``python -m model finetune``) and a
    name tends to stay on the same side from one fine-tune to the next, where a name an earlier
    version trained on would otherwise flatter the current model. At least one name is left to
    train on.
    """
    count = min(len(names) - 1, max(minimum, round(fraction * len(names))))
    held = set(sorted(names, key=lambda n: (zlib.crc32(n.encode("utf-8")), n))[:count])
    return [n for n in names if n not in held], sorted(held)
