"""📖 Meaning: what a generated name means, read from the Greek and Latin roots it is made of.

A button on a one-name ``/dinoname`` reply, a menu on a longer one; both dynamic items (the
name is in the custom id or the picked option), answered privately. The reading itself is the
meaning service's (``bot.services.meaning``); this module only words it.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import discord

from bot.services.meaning import Explanation, default_roots, explain
from bot.ui.components import JSON, name_control, prototype
from bot.ui.look import CHOICES, DINO_GREEN, EMBED_DESCRIPTION, EMBED_TITLE, fit
from bot.ui.replies import errors_reported

if TYPE_CHECKING:
    from bot.app import DinoBot

MEANING_MENU_ID = "dino:meaning-menu"
NO_ROOT = "no known root"


def meaning_lines(explanation: Explanation) -> list[str]:
    """One line per part: "*tyranno* (Greek, tyrant)", or "*xq* — no known root"."""
    lines = []
    for index, part in enumerate(explanation.parts):
        joint = "" if index == 0 else "+ "
        if part.root is None:
            lines.append(f"{joint}*{part.text}* — {NO_ROOT}")
        else:
            lines.append(f"{joint}*{part.text}* ({part.root.language}, {part.root.meaning})")
    return lines


def meaning_embed(explanation: Explanation) -> discord.Embed:
    name = explanation.name.capitalize()
    known = [p.root.meaning.split(",")[0] for p in explanation.parts if p.root is not None]
    description = "\n".join(meaning_lines(explanation))
    if known and len(known) < len(explanation.parts):
        description += f"\n\nThe parts it can read: “{' '.join(known)}”."
    elif known:
        description += f"\n\nRoughly: “{' '.join(known)}”."
    else:
        description += "\n\nNo part of it matches a root in DinoBot's table: a truly new coinage!"
    embed = discord.Embed(title=fit(f"📖 {name}", EMBED_TITLE), description=fit(description, EMBED_DESCRIPTION),
                          colour=DINO_GREEN)
    embed.set_footer(text=f"Read from a table of {len(default_roots())} roots, mostly Greek and Latin · "
                          f"{explanation.explained_letters} of {len(explanation.name)} letters explained")
    return embed


async def show_meaning(interaction: discord.Interaction, name: str) -> None:
    await interaction.response.send_message(embed=meaning_embed(explain(name)), ephemeral=True)


class MeaningButton(discord.ui.DynamicItem[discord.ui.Button], template=r"dino:meaning:(?P<name>[a-z]{1,32})"):
    """📖 Meaning on a one-name reply; the name is in the custom id."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(discord.ui.Button(label="Meaning", emoji="📖", style=discord.ButtonStyle.secondary,
                                           custom_id=f"dino:meaning:{name}"))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str]) -> "MeaningButton":
        return cls(match["name"])

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            await show_meaning(interaction, self.name)


class MeaningMenu(discord.ui.DynamicItem[discord.ui.Select], template=MEANING_MENU_ID):
    """"What does a name mean?" on a reply with several names; the picked option is the name."""

    def __init__(self, names: list[str]) -> None:
        options = [discord.SelectOption(label=name.capitalize(), value=name, emoji="📖")
                   for name in names[:CHOICES]]
        super().__init__(discord.ui.Select(custom_id=MEANING_MENU_ID, placeholder="📖 What does a name mean?",
                                           options=options))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select,
                             match: re.Match[str]) -> "MeaningMenu":
        return cls([option.value for option in item.options])

    async def callback(self, interaction: discord.Interaction) -> None:
        async with errors_reported(interaction):
            await show_meaning(interaction, self.item.values[0])


_BUTTON = prototype(MeaningButton("prototype"))
_MENU = {**prototype(MeaningMenu(["prototype"])), "options": []}


def meaning_component(names: list[str]) -> JSON | None:
    """The meaning control for a reply's names, as JSON: a button for one, a menu for several
    (what :class:`MeaningButton` and :class:`MeaningMenu` render to)."""
    return name_control(names, _BUTTON, "dino:meaning:", _MENU)


async def setup(bot: DinoBot) -> None:
    bot.add_dynamic_items(MeaningButton, MeaningMenu)
