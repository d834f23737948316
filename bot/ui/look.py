"""Embeds and small text helpers shared by the cogs (presentation only, no logic)."""
from __future__ import annotations

import discord

DINO_GREEN = discord.Colour(0x3BA55C)
EMBED_FIELD = 1024
EMBED_DESCRIPTION = 4096


def model_label(version: int | None) -> str:
    return "the base model" if version is None else f"this server's model v{version}"


def progress_bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
