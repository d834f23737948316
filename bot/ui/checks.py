"""Permission checks and per-user cooldowns for slash commands.

Admin commands are hidden from members with ``default_permissions(manage_guild=True)``, but a
server can override that in its integration settings, so every admin command is also checked
when it runs: Manage Server in this server, or the bot's owner.
"""
from __future__ import annotations

import time
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


class MemberBudget:
    """A per-member rate limit shared by everything that spends it.

    discord.py's cooldown decorators keep one bucket map per command, so a button doing the same
    work as a command got a budget of its own: after /dinoname's was spent, 40 of 40 "🔁 More"
    presses were still answered (issue 8). One budget per kind of work, spent by the command and
    its buttons alike, closes that. Buckets of members whose window has passed are dropped now
    and then, so a bot that meets many members does not keep one bucket each for ever.
    """

    PRUNE_EVERY = 1024  # spends between two sweeps of idle buckets

    def __init__(self, rate: int, per: float, clock: Callable[[], float] = time.time) -> None:
        self.rate, self.per = rate, per
        self._clock = clock
        self._buckets: dict[int, app_commands.Cooldown] = {}
        self._spends = 0

    def spend(self, user_id: int) -> None:
        """Use one of the member's tokens; :class:`app_commands.CommandOnCooldown` (which the
        error handler words as "slow down") if none is left."""
        now = self._clock()
        self._spends += 1
        if self._spends % self.PRUNE_EVERY == 0:
            self._prune(now)
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = app_commands.Cooldown(self.rate, self.per)
        retry_after = bucket.update_rate_limit(now)
        if retry_after is not None:
            raise app_commands.CommandOnCooldown(bucket, retry_after)

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        full = [user for user, bucket in self._buckets.items() if bucket.get_tokens(now) >= bucket.rate]
        for user in full:
            del self._buckets[user]


def _cooldown(kind: str) -> Callable[[discord.Interaction], app_commands.Cooldown | None]:
    def factory(interaction: discord.Interaction) -> app_commands.Cooldown | None:
        bot: DinoBot = interaction.client  # type: ignore[assignment]
        rate, per = getattr(bot.config, f"{kind}_rate")
        return app_commands.Cooldown(rate, per)
    return factory


def submit_cooldown() -> Callable:
    """Per-user rate limit on submissions (DINOBOT_SUBMIT_PER_MINUTE), on top of the daily cap."""
    return app_commands.checks.dynamic_cooldown(_cooldown("submit"), key=lambda i: i.user.id)
