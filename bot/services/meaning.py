"""📖 What a name means: its Greek and Latin roots, from a table written for this project.

Dinosaur names are glued together from a small stock of word parts — *tyranno* + *saurus*,
*veloci* + *raptor* — so a generated name can be read the same way. :func:`explain` cuts a
name into the fewest, longest known roots (dynamic programming over its letters) and says
honestly which letters no root explains. A single vowel after a root is read as a linking
vowel (*carn-o-taurus*) and shown with the root before it.

The roots live in ``data/roots.tsv`` (root, language, meaning), loaded once; a malformed table
is refused with its line number rather than half-loaded.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from model import normalize_name

ROOTS_FILE = Path(__file__).resolve().parent / "data" / "roots.tsv"
LANGUAGES = frozenset({"Greek", "Latin", "Chinese", "Mongolian", "Nahuatl", "Taino"})
LINKING_VOWELS = frozenset("aeiou")

# Costs of reading a stretch of letters one way or another: the cheapest reading wins. An
# unexplained letter costs more than a root, so any root that fits is used; very short roots
# cost a little more, so "eu" + "don" does not beat "odon" when both fit.
_ROOT = 1.0
_SHORT_ROOT = 0.5  # extra, for roots of two letters
_UNKNOWN = 2.0  # per letter
_LINK = 0.3


class RootTableError(ValueError):
    """The roots table is malformed; the message names the line."""


@dataclass(frozen=True)
class Root:
    text: str
    language: str
    meaning: str


@dataclass(frozen=True)
class Part:
    """A stretch of the name: a root (with any linking vowel after it), or unexplained letters."""

    text: str
    root: Root | None


@dataclass(frozen=True)
class Explanation:
    name: str
    parts: tuple[Part, ...]

    @property
    def explained_letters(self) -> int:
        return sum(len(p.text) for p in self.parts if p.root is not None)


def parse_roots(text: str, source: str = "roots table") -> dict[str, Root]:
    """Read ``root<TAB>language<TAB>meaning`` lines (``#`` comments and the header skipped)."""
    roots: dict[str, Root] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#") or line.startswith("root\t"):
            continue
        fields = line.split("\t")
        where = f"{source}, line {number}"
        if len(fields) != 3 or not all(f.strip() for f in fields):
            raise RootTableError(f"{where}: expected root, language and meaning separated by tabs")
        root, language, meaning = (f.strip() for f in fields)
        if not (root.isascii() and root.isalpha() and root.islower()):
            raise RootTableError(f"{where}: the root {root!r} must be lower-case letters a–z")
        if language not in LANGUAGES:
            raise RootTableError(f"{where}: unknown language {language!r} (one of {', '.join(sorted(LANGUAGES))})")
        if root in roots:
            raise RootTableError(f"{where}: the root {root!r} is listed twice")
        roots[root] = Root(root, language, meaning)
    return roots


@functools.cache
def default_roots() -> Mapping[str, Root]:
    """The shipped table, read once."""
    return parse_roots(ROOTS_FILE.read_text(encoding="utf-8"), str(ROOTS_FILE.name))


def explain(raw_name: str, roots: Mapping[str, Root] | None = None) -> Explanation:
    """Read ``raw_name`` as roots; raises ``InvalidName`` for text that is not a name."""
    name = normalize_name(raw_name)
    table = default_roots() if roots is None else roots
    longest = max((len(r) for r in table), default=0)
    # best[i]: (cost, steps) for name[:i]; a step is (start, end, root or None, linked).
    best: list[tuple[float, tuple] | None] = [None] * (len(name) + 1)
    best[0] = (0.0, ())
    for i in range(len(name)):
        if best[i] is None:
            continue
        cost, steps = best[i]
        after_root = bool(steps) and steps[-1][2] is not None
        options = [(i + 1, _UNKNOWN, None)]
        if after_root and name[i] in LINKING_VOWELS:
            options.append((i + 1, _LINK, "link"))
        for j in range(i + 1, min(len(name), i + longest) + 1):
            root = table.get(name[i:j])
            if root is not None:
                options.append((j, _ROOT + (_SHORT_ROOT if j - i <= 2 else 0.0), root))
        for j, extra, what in options:
            candidate = (cost + extra, steps + ((i, j, what),))
            if best[j] is None or candidate[0] < best[j][0] - 1e-9:
                best[j] = candidate
    assert best[-1] is not None
    return Explanation(name, _merge(name, best[-1][1]))


def _merge(name: str, steps: tuple) -> tuple[Part, ...]:
    """Turn DP steps into parts: links join the root before them, unknown letters run together."""
    parts: list[Part] = []
    for start, end, what in steps:
        text = name[start:end]
        if what == "link" or (what is None and parts and parts[-1].root is None):
            parts[-1] = Part(parts[-1].text + text, parts[-1].root)
        else:
            parts.append(Part(text, what))
    return tuple(parts)
