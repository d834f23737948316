"""A tiny throwaway bot (not DinoBot) for testing the fake Discord with the real discord.py client.

It syncs commands and answers slash commands, buttons, a select, a modal, DMs, deferred work with
edits, and files: every flow the fake has to get right, shared by the fake's test modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import AsyncIterator

import discord
from discord import app_commands
from discord.ext import commands

from tests.support.fake_discord import FakeDiscord

GUILD_ID = 1000
OTHER_GUILD_ID = 2000


# -- the throwaway bot --------------------------------------------------------------------------


class CounterView(discord.ui.View):
    """A persistent view: the button keeps working after the bot restarts."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Count", custom_id="tiny:count", style=discord.ButtonStyle.primary)
    async def count(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        assert interaction.message is not None
        current = int(interaction.message.content.split()[-1])
        await interaction.response.edit_message(content=f"count is {current + 1}")


class PickView(discord.ui.View):
    @discord.ui.select(
        custom_id="tiny:pick", options=[discord.SelectOption(label=n) for n in ("rex", "raptor", "trike")]
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        await interaction.response.send_message(f"you picked {', '.join(select.values)}", ephemeral=True)


class NameModal(discord.ui.Modal, title="Suggest a name"):
    name: discord.ui.TextInput = discord.ui.TextInput(label="Name", custom_id="tiny:name")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks for {self.name.value}")


class TinyCog(commands.Cog):
    names = app_commands.Group(name="names", description="Name lists")
    admin = app_commands.Group(name="admin", description="Name admin", parent=names)

    def __init__(self, bot: "TinyBot") -> None:
        self.bot = bot

    @app_commands.command(description="Answer pong")
    async def ping(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    @app_commands.command(description="Repeat some text, privately")
    async def echo(self, interaction: discord.Interaction, text: str, times: app_commands.Range[int, 1, 5] = 1) -> None:
        await interaction.response.send_message(
            " ".join([text] * times), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(description="Work slowly, reporting progress")
    async def slow(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        for step in range(1, 4):
            await interaction.edit_original_response(content=f"step {step}/3")
        await interaction.followup.send("all done", ephemeral=True)

    @app_commands.command(description="A counter button and a file")
    async def counter(self, interaction: discord.Interaction) -> None:
        file = discord.File(io.BytesIO(b"name\ntyrannosaurus\n"), filename="names.csv")
        await interaction.response.send_message("count is 0", view=CounterView(), file=file)

    @app_commands.command(description="Talk a lot: fetch, followups, edits, deletes, channel and DM")
    async def chatter(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first")
        original = await interaction.original_response()
        note = await interaction.followup.send(f"second after {original.content}", wait=True)
        await note.edit(content=note.content + "!")
        temporary = await interaction.followup.send("temporary", wait=True)
        await temporary.delete()
        assert isinstance(interaction.channel, discord.TextChannel)
        await interaction.channel.send("in the channel")
        await interaction.user.send("in your DMs")

    @app_commands.command(description="Pick a dinosaur from a menu")
    async def pick(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pick one", view=PickView())

    @app_commands.command(description="Look up a species")
    async def species(self, interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    @species.autocomplete("name")
    async def species_autocomplete(self, interaction: discord.Interaction, current: str) -> list:
        known = ["tyrannosaurus", "triceratops", "velociraptor"]
        return [app_commands.Choice(name=n, value=n) for n in known if n.startswith(current)]

    @app_commands.command(description="Who and where am I?")
    async def whoami(self, interaction: discord.Interaction) -> None:
        where = interaction.guild.name if interaction.guild else "a DM"
        manage = interaction.permissions.manage_guild
        await interaction.response.send_message(f"{interaction.user.name} in {where}, manage_guild={manage}")

    @app_commands.command(description="Suggest a name in a form")
    async def suggest(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(NameModal())

    @app_commands.command(description="Reply with too much text")
    async def toolong(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("x" * 2001)

    @app_commands.command(description="Reply too late")
    async def sleepy(self, interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        await interaction.response.send_message("yawn")

    @names.command(name="list", description="List names")
    async def names_list(self, interaction: discord.Interaction, limit: int = 3) -> None:
        await interaction.response.send_message(f"listing {limit}")

    @admin.command(name="purge", description="Remove all names")
    async def names_purge(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("purged")


class TinyBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned, intents=discord.Intents.default(), guild_ready_timeout=0.05
        )
        self.resumed_count = 0

    async def setup_hook(self) -> None:
        self.add_view(CounterView())
        await self.add_cog(TinyCog(self))
        await self.tree.sync()

    async def on_resumed(self) -> None:
        self.resumed_count += 1

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every re-IDENTIFY (Discord's identify rate limit);
        nothing to protect against a fake, so skip it to keep the tests fast."""


# -- harness ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, *, ready_count: int = 1) -> AsyncIterator[TinyBot]:
    """Log a fresh TinyBot in to ``fake``, wait for READY, and shut it down cleanly afterwards."""
    bot = TinyBot()
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect())
    try:
        await fake.wait_for_ready(count=ready_count)
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, timeout=5)
