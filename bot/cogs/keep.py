"""⭐ Keep: a member keeps a generated name for the server with one click.

A one-name ``/dinoname`` reply carries a ⭐ Keep button; a longer one a "Keep a name" menu.
Both are :class:`discord.ui.DynamicItem` s whose state is in the custom id (the button) or the
picked option (the menu), so they keep working after a restart, on any reply ever sent.

Keeping is ``/submit`` by click: the same cooldown (one bucket shared with ``/submit``), and the
store runs the same checks (known dinosaurs, the daily limit, the review setting). The keep is
credited to whoever clicked, answered privately, and a name several members keep is one name
with several votes (``/names top`` ranks them).
"""
from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.services.records import Kept, Status
from bot.ui.components import JSON, name_control, prototype
from bot.ui.look import CHOICES, describe_likeness, fit, when
from bot.ui.replies import errors_reported, send_ephemeral

if TYPE_CHECKING:
    from bot.app import DinoBot

log = logging.getLogger(__name__)

KEEP_MENU_ID = "dino:keep-menu"


def kept_text(kept: Kept, verdict: str, user_id: int) -> str:
    """The private answer to a keep: what happened to the name, and how it ranks."""
    sub = kept.submission
    name = f"**{sub.name.capitalize()}**"
    pending = sub.status is Status.PENDING
    if kept.first_keep:
        if pending:
            head = (f"⭐ You kept {name}. It awaits review by a moderator; once approved it joins this "
                    "server's names.")
        else:
            head = f"⭐ You kept {name}: it joins this server's names, and you are the first to keep it."
    else:
        first = "you" if kept.first_by == user_id else f"<@{kept.first_by}>"
        head = (f"⭐ You kept {name} too: **{kept.keeps}** members have kept it now (first kept by {first} "
                f"{when(kept.first_at)}).")
        if pending:
            head += " It still awaits a moderator's review."
    return fit(f"{head}\nThis server's model finds it {verdict}.")


async def keep_name(interaction: discord.Interaction, name: str) -> None:
    """Keep ``name`` for the clicker's server: cooldown, the store's checks, a private answer."""
    bot: DinoBot = interaction.client  # type: ignore[assignment]
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    bot.submit_rate.use(interaction.user.id)  # raises CommandOnCooldown, worded by report_error
    kept = await bot.store.keeps.keep(interaction.guild_id, interaction.user.id, name)  # committed
    likeness = await bot.likeness.rank(interaction.guild_id, kept.submission.name)
    log.info("guild %s: user %s kept %r (%d keeps, %s)", interaction.guild_id, interaction.user.id,
             kept.submission.name, kept.keeps, kept.submission.status)
    await send_ephemeral(interaction, kept_text(kept, describe_likeness(likeness.percentile), interaction.user.id))


class KeepButton(discord.ui.DynamicItem[discord.ui.Button], template=r"dino:keep:(?P<name>[a-z]{1,32})"):
    """⭐ Keep on a one-name reply; the name is in the custom id."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(discord.ui.Button(label="Keep", emoji="⭐", style=discord.ButtonStyle.primary,
                                           custom_id=f"dino:keep:{name}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> "KeepButton":
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            await keep_name(interaction, self.name)


class KeepMenu(discord.ui.DynamicItem[discord.ui.Select], template=KEEP_MENU_ID):
    """"Keep a name…" on a reply with several names; the picked option is the name."""

    def __init__(self, names: list[str]) -> None:
        options = [discord.SelectOption(label=name.capitalize(), value=name, emoji="⭐")
                   for name in names[:CHOICES]]
        super().__init__(discord.ui.Select(custom_id=KEEP_MENU_ID, placeholder="⭐ Keep a name for this server…",
                                           options=options))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select,
                             match: re.Match[str]) -> "KeepMenu":
        return cls([option.value for option in item.options])

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            await keep_name(interaction, self.item.values[0])


_BUTTON = prototype(KeepButton("prototype"))
_MENU = {**prototype(KeepMenu(["prototype"])), "options": []}


def keep_component(names: list[str]) -> JSON | None:
    """The keep control for a reply's keepable names, as JSON: a button for one, a menu for
    several (what :class:`KeepButton` and :class:`KeepMenu` render to)."""
    return name_control(names, _BUTTON, "dino:keep:", _MENU)


async def setup(bot: DinoBot) -> None:
    bot.add_dynamic_items(KeepButton, KeepMenu)
