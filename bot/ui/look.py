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
EMBED_FIELDS = 25
CHOICES = 25  # autocomplete choices and select options
CHOICE_NAME = 100  # characters of an autocomplete choice's name, or a select option's label


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


def describe_likeness(percentile: int) -> str:
    """A name's standing among real dinosaur names, in words (no nats: those are for /dinoinfo)."""
    if percentile >= 100:
        return "more dinosaur-like than every real dinosaur name"
    if percentile <= 0:
        return "less dinosaur-like than every real dinosaur name"
    return f"more dinosaur-like than {percentile} % of real dinosaur names"


def when(timestamp: float, style: discord.utils.TimestampStyle = "R") -> str:
    """A Discord timestamp: every reader sees it in their own time zone and language."""
    return discord.utils.format_dt(datetime.fromtimestamp(timestamp, timezone.utc), style)
