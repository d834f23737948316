"""Answering members: ephemeral replies, and the one place errors become friendly text.

Expected errors (bad input, limits, permissions, cooldowns) become a short ephemeral message;
anything else becomes an apology with an error id, and the traceback goes to the log under the
same id so the operator can find it.
"""
from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager
from typing import AsyncIterator

import discord
from discord import app_commands

from bot.errors import member_message
from bot.ui.look import fit, sentence

log = logging.getLogger(__name__)


class NotAdmin(app_commands.CheckFailure):
    def __init__(self) -> None:
        super().__init__("Only members with **Manage Server** (or the bot's owner) can do that. Nothing was changed.")


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Reply privately whether or not the interaction was already answered or deferred."""
    text = fit(text)
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


def friendly_message(error: BaseException) -> str | None:
    """The member-facing text for an expected error, or None for a bug."""
    if isinstance(error, (app_commands.CommandInvokeError, app_commands.TransformerError)) and error.__cause__:
        error = error.__cause__
    if isinstance(error, (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)):
        # Discord still shows a command as it was before the bot's last update: not a bug here.
        return ("That command has changed since your Discord app loaded it. Wait a minute for "
                "Discord to catch up (or restart the app), then try again.")
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: you can use this again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server, not in DMs."
    if isinstance(error, (app_commands.MissingPermissions, NotAdmin)):
        return str(NotAdmin())
    if isinstance(error, app_commands.CheckFailure):
        return str(error) or "You can't use this command here."
    text = member_message(error)
    return None if text is None else sentence(text)


def apology(error_id: str) -> str:
    """What a member sees for a bug: no details, an id the operator finds in the log."""
    return (f"Sorry, something went wrong on our side (error id `{error_id}`). "
            "It has been logged; please try again in a moment.")


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what went wrong; log the unexpected with an id they can quote."""
    message = friendly_message(error)
    if message is None:
        error_id = secrets.token_hex(4)
        command = interaction.command.qualified_name if interaction.command else interaction.data
        log.error("error %s in %s (guild %s, user %s)", error_id, command, interaction.guild_id,
                  interaction.user.id, exc_info=error)
        message = apology(error_id)
    try:
        await send_ephemeral(interaction, message)
    except discord.HTTPException:
        log.warning("could not deliver an error reply to interaction %s", interaction.id, exc_info=True)


@asynccontextmanager
async def errors_reported(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Report what the block raises to the member, as :func:`report_error` does for commands.

    Dynamic items (buttons and menus that work on any reply, also after a restart) have no
    command tree error handler, so their callbacks run inside this instead."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - dynamic items have no tree error handler
        await report_error(interaction, error)
