"""Permission checks and per-user cooldowns for slash commands.

Admin commands are hidden from members with ``default_permissions(manage_guild=True)``, but a
server can override that in its integration settings, so every admin command is also checked
when it runs: Manage Server in this server, or the bot's owner.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import discord
from discord import app_commands

from bot.ui.replies import NotAdmin

if TYPE_CHECKING:
    from bot.app import DinoBot


async def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server here, or the bot's owner; raises :class:`NotAdmin` (or NoPrivateMessage)."""
    if interaction.guild is None:
        raise app_commands.NoPrivateMessage()
    if interaction.permissions.manage_guild:
        return True
    if await interaction.client.is_owner(interaction.user):
        return True
    raise NotAdmin()


async def can_moderate(interaction: discord.Interaction) -> bool:
    """Manage Server or the bot's owner, as a yes/no (``is_admin`` raises for a no)."""
    try:
        return await is_admin(interaction)
    except NotAdmin:
        return False


def in_server() -> Callable:
    """Refuse in DMs at run time: ``guild_only`` only hides a command in Discord's client."""
    def predicate(interaction: discord.Interaction) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        return True
    return app_commands.check(predicate)


def admin_only() -> Callable:
    """Hide the command from non-admins and refuse it at run time too."""
    def decorator(func: Callable) -> Callable:
        func = app_commands.default_permissions(manage_guild=True)(func)
        func = app_commands.guild_only()(func)
        return app_commands.check(is_admin)(func)
    return decorator


def _cooldown(kind: str) -> Callable[[discord.Interaction], app_commands.Cooldown | None]:
    def factory(interaction: discord.Interaction) -> app_commands.Cooldown | None:
        bot: DinoBot = interaction.client  # type: ignore[assignment]
        rate, per = getattr(bot.config, f"{kind}_rate")
        return app_commands.Cooldown(rate, per)
    return factory


def generate_cooldown() -> Callable:
    """Per-user rate limit on name generation (DINOBOT_GENERATE_PER_30S)."""
    return app_commands.checks.dynamic_cooldown(_cooldown("generate"), key=lambda i: i.user.id)


class MemberRate:
    """A per-member rate limit that a command and buttons share.

    discord.py's cooldown decorators keep their buckets private to one command; ``/submit`` and
    the ⭐ Keep buttons add names alike, so they draw on one bucket per member, and neither
    can be used to get round the other's limit.
    """

    PRUNE_AT = 10_000  # members tracked before idle buckets are dropped

    def __init__(self, rate: int, per: float) -> None:
        self.rate, self.per = rate, per
        self._buckets: dict[int, app_commands.Cooldown] = {}

    def use(self, user_id: int) -> None:
        """Count one use; raises ``CommandOnCooldown`` (worded by the error handler) if over."""
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= self.PRUNE_AT:
                self._buckets = {k: b for k, b in self._buckets.items() if b.get_tokens() < b.rate}
            bucket = self._buckets[user_id] = app_commands.Cooldown(self.rate, self.per)
        retry_after = bucket.update_rate_limit()
        if retry_after:
            raise app_commands.CommandOnCooldown(bucket, retry_after)


def submit_cooldown() -> Callable:
    """Per-user rate limit on submissions (DINOBOT_SUBMIT_PER_MINUTE), on top of the daily cap,
    shared with keeping names (``bot.submit_rate``)."""
    def predicate(interaction: discord.Interaction) -> bool:
        bot: DinoBot = interaction.client  # type: ignore[assignment]
        bot.submit_rate.use(interaction.user.id)
        return True
    return app_commands.check(predicate)
