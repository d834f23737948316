"""How DinoBot looks and reads: colours, Discord's size limits, and wording shared by the cogs.

Presentation only: these helpers turn facts the services return into text and never decide
anything.
"""
from __future__ import annotations

from datetime import datetime, timezone

import discord

DINO_GREEN = discord.Colour(0x3BA55C)
MESSAGE = 2000
EMBED_TITLE = 256
EMBED_FIELD = 1024
EMBED_DESCRIPTION = 4096

# Upper bounds (nats per letter, lower = likelier) for each wording. The base model scores real
# dinosaur names at about 1.5 (middle half 1.2-1.8), random letters at 4-6, and everyday words
# such as "banana" or "mountain" at 2.3-3.4 (uniform guessing: ln 27 = 3.3).
SCORE_WORDS: tuple[tuple[float, str], ...] = (
    (1.3, "very dinosaur-like"),
    (1.9, "dinosaur-like"),
    (2.6, "somewhat dinosaur-like"),
    (3.3, "not very dinosaur-like"),
)
LEAST_LIKE = "not dinosaur-like at all"


def fit(text: str, limit: int = MESSAGE) -> str:
    """Fit Discord's limits: cut with an ellipsis rather than have the API refuse the reply."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter and a full stop (unless it ends in ! ? …).

    Error texts from the services and the model start lower-case ("a name is at most 32
    letters"), as messages that may be embedded; a reply to a member reads as a sentence.
    """
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def model_label(version: int | None) -> str:
    return "the base model" if version is None else f"this server's model v{version}"


def progress_bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def describe_score(score: float) -> str:
    """Put a mean NLL into words a member understands (the number, in nats, stays for /dinoinfo)."""
    return next((text for bound, text in SCORE_WORDS if score < bound), LEAST_LIKE)


def when(timestamp: float, style: discord.utils.TimestampStyle = "R") -> str:
    """A Discord timestamp: every reader sees it in their own time zone and language."""
    return discord.utils.format_dt(datetime.fromtimestamp(timestamp, timezone.utc), style)
