"""``/help``: every command with what it does and an example, answered privately.

The list is read from the command tree, so a new command shows up by itself; its example comes
from :data:`EXAMPLES` (a test fails if a command has none). Moderator commands — those guarded
by ``is_admin`` — are listed only to moderators, in a section of their own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.ui.checks import can_moderate, is_admin
from bot.ui.look import DINO_GREEN, EMBED_FIELD, EMBED_FIELDS, fit

if TYPE_CHECKING:
    from bot.app import DinoBot

#: One example per command, as a member would type it (qualified names: "names list").
EXAMPLES: dict[str, str] = {
    "dinoname": "/dinoname prefix:tyr count:3 private:True",
    "dinoinfo": "/dinoinfo chart:True",
    "submit": "/submit name:Glimmerosaurus",
    "names list": "/names list file:True",
    "names top": "/names top",
    "names remove": "/names remove name:Glimmerosaurus",
    "review": "/review",
    "settings": "/settings review:True",
    "retrain": "/retrain",
    "models": "/models use:2",
    "help": "/help",
}

EXTRAS = ("On a `/dinoname` reply: ⭐ **Keep** adds a name to this server's names (a keep by several "
          "members counts as votes for `/names top`), 📖 **Meaning** explains it by its Greek and Latin "
          "roots, and 🔁 **More** re-rolls.")


def is_moderator_command(command: app_commands.Command) -> bool:
    return is_admin in command.checks


def leaf_commands(tree: app_commands.CommandTree) -> list[app_commands.Command]:
    """Every runnable slash command (subcommands rather than their groups), alphabetically."""
    found = [c for c in tree.walk_commands() if isinstance(c, app_commands.Command)]
    return sorted(found, key=lambda c: c.qualified_name)


def help_embed(commands_: list[app_commands.Command], moderator: bool) -> discord.Embed:
    embed = discord.Embed(title="🦕 DinoBot commands", description=EXTRAS, colour=DINO_GREEN)
    everyone = [c for c in commands_ if not is_moderator_command(c)]
    mods = [c for c in commands_ if is_moderator_command(c)] if moderator else []
    for command in (everyone + mods)[:EMBED_FIELDS]:
        tag = " · moderators" if is_moderator_command(command) else ""
        example = EXAMPLES.get(command.qualified_name, f"/{command.qualified_name}")
        embed.add_field(name=f"/{command.qualified_name}{tag}",
                        value=fit(f"{command.description}\ne.g. `{example}`", EMBED_FIELD), inline=False)
    if moderator:
        embed.set_footer(text="Moderators (Manage Server) see their commands too; others don't.")
    return embed


class Help(commands.Cog):
    def __init__(self, bot: DinoBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="What DinoBot can do, with an example of each command")
    async def help(self, interaction: discord.Interaction) -> None:
        moderator = interaction.guild_id is not None and await can_moderate(interaction)
        embed = help_embed(leaf_commands(self.bot.tree), moderator)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: DinoBot) -> None:
    await bot.add_cog(Help(bot))
