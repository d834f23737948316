"""The fake Discord proves itself against the real discord.py client.

A tiny throwaway bot (defined here, not DinoBot) logs in to the fake, syncs its commands and
answers slash commands, buttons, a modal, DMs, deferred work with edits, files, and a gateway
outage. If these pass, the fake is faithful enough for the bot's own end-to-end tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
from typing import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.support.fake_checks import check_fake_at_teardown
from tests.support.fake_discord import (
    MANAGE_GUILD,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    LateInteraction,
)

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


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeDiscord]:
    guilds = [FakeGuild(id=GUILD_ID, name="Dino Club"), FakeGuild(id=OTHER_GUILD_ID, name="Other Club")]
    async with FakeDiscord(guilds=guilds) as server, server.patch_discord():
        yield server
    check_fake_at_teardown(server, request)


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[TinyBot]:
    async with running_bot(fake) as running:
        yield running


# -- tests ------------------------------------------------------------------------------------------


async def test_login_ready_and_command_sync(fake: FakeDiscord, bot: TinyBot) -> None:
    await asyncio.wait_for(bot.wait_until_ready(), timeout=2)
    assert bot.user is not None and bot.user.id == fake.application_id
    assert {guild.id for guild in bot.guilds} == {GUILD_ID, OTHER_GUILD_ID}
    assert bot.get_guild(GUILD_ID).get_channel(GUILD_ID + 1) is not None  # type: ignore[union-attr]
    assert [(r.method, r.path) for r in fake.requests[:2]] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
    ]
    assert fake.gateway.identify_payloads[0]["token"] == fake.token
    assert fake.gateway.connections[0].query["encoding"] == "json"

    assert fake.sync_count() == 1 and fake.sync_count(None) == 1
    synced = {command["name"]: command for command in fake.commands()}
    assert set(synced) == {
        "ping",
        "echo",
        "slow",
        "counter",
        "chatter",
        "pick",
        "species",
        "whoami",
        "suggest",
        "toolong",
        "sleepy",
        "names",
    }
    names_options = {option["name"]: option["type"] for option in synced["names"]["options"]}
    assert names_options == {"list": 1, "admin": 2}
    fetched = await bot.tree.fetch_commands()
    assert {command.name: command.id for command in fetched} == {name: int(c["id"]) for name, c in synced.items()}

    await fake.add_guild(FakeGuild(id=3000, name="New Club"))
    await fake.wait_until(lambda: bot.get_guild(3000), what="the bot to see the new guild")
    fake.assert_clean()


async def test_slash_command_round_trip_and_option_types(fake: FakeDiscord, bot: TinyBot) -> None:
    handle = await fake.slash("ping")
    callback = await handle.response()
    assert callback["type"] == 4 and callback["data"]["content"] == "pong"
    assert handle.original is not None and handle.original.content == "pong" and not handle.original.ephemeral
    assert handle.latency is not None and handle.latency > 0  # answered after it was sent

    echo = await fake.slash("echo", {"text": "rex", "times": 3})
    assert echo.payload["data"]["options"][1] == {"name": "times", "type": 4, "value": 3}
    await echo.response()
    assert echo.original is not None and echo.original.content == "rex rex rex"
    assert echo.original.ephemeral
    assert echo.original.allowed_mentions == {"parse": []}
    fake.assert_clean()


async def test_defer_then_edits_and_followup_in_order(fake: FakeDiscord, bot: TinyBot) -> None:
    handle = await fake.slash("slow")
    assert (await handle.response())["type"] == 5
    followups = await handle.wait_for_followups(1)
    assert [edit["content"] for edit in handle.edits] == ["step 1/3", "step 2/3", "step 3/3"]
    assert handle.original is not None and handle.original.content == "step 3/3" and not handle.original.loading
    assert [revision["content"] for revision in handle.original.revisions] == ["", "step 1/3", "step 2/3", "step 3/3"]
    assert followups[0].content == "all done" and followups[0].ephemeral
    kinds = [(r.method, r.route) for r in handle.requests]
    assert kinds[0] == ("POST", "/interactions/{interaction_id}/{token}/callback")
    assert kinds[-1] == ("POST", "/webhooks/{app_id}/{token}")
    fake.assert_clean()


async def test_fetch_followups_edits_deletes_channel_and_dm_messages(fake: FakeDiscord, bot: TinyBot) -> None:
    handle = await fake.slash("chatter")
    await handle.response()
    dm_channel = fake.dm_channel_id(fake.default_user)
    await fake.wait_until(lambda: fake.channel_messages(dm_channel), what="the DM")
    first, second = handle.followups
    assert second.deleted and first.content == "second after first!"
    assert [m.content for m in handle.messages] == ["first", "second after first!", "temporary"]
    assert [m.content for m in fake.channel_messages(GUILD_ID + 1)] == [
        "first",
        "second after first!",
        "in the channel",
    ]
    assert [m.content for m in fake.channel_messages(dm_channel)] == ["in your DMs"]
    assert [(r.method, r.route) for r in handle.requests[1:]] == [
        ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}"),
        ("POST", "/webhooks/{app_id}/{token}"),
        ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}"),
        ("POST", "/webhooks/{app_id}/{token}"),
        ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}"),
    ]
    fake.assert_clean()


async def test_select_menu_and_autocomplete(fake: FakeDiscord, bot: TinyBot) -> None:
    menu = await fake.slash("pick")
    await menu.response()
    assert menu.original is not None
    picked = await fake.click(menu.original, "tiny:pick", values=["raptor"])
    assert (await picked.response())["data"]["content"] == "you picked raptor"

    typing = await fake.autocomplete("species", {"name": "t"}, focused="name")
    callback = await typing.response()
    assert callback["type"] == 8
    assert [choice["value"] for choice in callback["data"]["choices"]] == ["tyrannosaurus", "triceratops"]
    fake.assert_clean()


async def test_button_click_round_trip_and_file_attachment(fake: FakeDiscord, bot: TinyBot) -> None:
    handle = await fake.slash("counter")
    await handle.response()
    message = handle.original
    assert message is not None and message.custom_ids() == ["tiny:count"]
    [attachment] = message.attachments
    assert attachment.filename == "names.csv" and attachment.text() == "name\ntyrannosaurus\n"
    async with aiohttp.ClientSession() as session, session.get(attachment.url) as response:
        assert await response.read() == attachment.data

    click = await fake.click(message, label="Count")
    callback = await click.response()
    assert callback["type"] == 7 and message.content == "count is 1"
    await (await fake.click(message, "tiny:count")).response()
    assert message.content == "count is 2"
    with pytest.raises(LookupError):
        await fake.click(message, "no-such-button")
    fake.assert_clean()


async def test_persistent_button_survives_a_bot_restart(fake: FakeDiscord) -> None:
    async with running_bot(fake) as bot:
        handle = await fake.slash("counter")
        await handle.response()
    assert bot.is_closed()
    message = handle.original
    assert message is not None
    async with running_bot(fake, ready_count=2):
        await (await fake.click(message, "tiny:count")).response()
        assert message.content == "count is 1"
    fake.assert_clean()


async def test_nested_subcommands(fake: FakeDiscord, bot: TinyBot) -> None:
    listing = await fake.slash("names list", {"limit": 5})
    assert listing.payload["data"]["options"] == [
        {"name": "list", "type": 1, "options": [{"name": "limit", "type": 4, "value": 5}]}
    ]
    assert (await listing.response())["data"]["content"] == "listing 5"
    purge = await fake.slash("names admin purge")
    assert purge.payload["data"]["options"][0]["type"] == 2
    assert (await purge.response())["data"]["content"] == "purged"
    fake.assert_clean()


async def test_permissions_and_dm_interactions(fake: FakeDiscord, bot: TinyBot) -> None:
    member = await fake.slash("whoami")
    assert (await member.response())["data"]["content"] == "dino_fan in Dino Club, manage_guild=False"
    admin = await fake.slash("whoami", permissions=MANAGE_GUILD, guild=OTHER_GUILD_ID)
    assert (await admin.response())["data"]["content"] == "dino_fan in Other Club, manage_guild=True"
    owner = FakeUser(id=GUILD_ID + 2, username="server_owner")
    as_owner = await fake.slash("whoami", user=owner)
    assert (await as_owner.response())["data"]["content"].endswith("manage_guild=True")

    dm = await fake.slash("whoami", guild=None)
    assert "guild_id" not in dm.payload and dm.payload["user"]["username"] == "dino_fan"
    assert (await dm.response())["data"]["content"] == "dino_fan in a DM, manage_guild=False"
    assert dm.original is not None and dm.original.guild_id is None
    fake.assert_clean()


async def test_modal_round_trip(fake: FakeDiscord, bot: TinyBot) -> None:
    opened = await fake.slash("suggest")
    callback = await opened.response()
    assert callback["type"] == 9 and callback["data"]["title"] == "Suggest a name"
    submitted = await fake.submit_modal(opened, {"tiny:name": "velociraptor"})
    assert (await submitted.response())["data"]["content"] == "thanks for velociraptor"
    fake.assert_clean()


async def test_gateway_drop_then_resume(fake: FakeDiscord, bot: TinyBot) -> None:
    dropped = await fake.drop_connection(code=4000)
    assert dropped.close_code == 4000
    resumed = await fake.wait_for_resume()
    assert resumed.path == "/gateway/resume" and resumed.replayed == 0
    assert (await (await fake.slash("ping")).response())["data"]["content"] == "pong"

    # An interaction injected during an outage waits in the session log and is replayed on RESUME.
    await fake.drop_connection(abrupt=True)
    during_outage = await fake.slash("ping")
    resumed = await fake.wait_for_resume(count=2)
    assert resumed.replayed == 1
    assert (await during_outage.response())["data"]["content"] == "pong"
    assert fake.gateway.ready_count == 1
    assert [event.seq for event in fake.gateway.events] == list(range(1, fake.gateway.seq + 1))
    await fake.wait_until(lambda: bot.resumed_count == 2, what="two on_resumed events")

    # A session Discord will not resume: the client must IDENTIFY again.
    await fake.gateway.invalidate_session(resumable=False)
    await fake.wait_for_ready(count=2)
    assert (await (await fake.slash("ping")).response())["data"]["content"] == "pong"
    fake.assert_clean()


async def test_heartbeats_are_sent_and_acknowledged() -> None:
    """Heartbeats arrive, carry the session's sequence number, and their ACKs reach the client
    (its latency is measured from them); how regular they are is a benchmark figure."""
    interval = 0.1
    async with FakeDiscord(guilds=[FakeGuild(id=GUILD_ID)], heartbeat_interval=interval) as fake, fake.patch_discord():
        async with running_bot(fake) as bot:
            await fake.wait_until(lambda: len(fake.gateway.heartbeats) >= 5, timeout=3, what="5 heartbeats")
            connection = fake.gateway.current
            assert connection.heartbeat_seqs[-1] == fake.gateway.seq
            assert len(fake.gateway.heartbeat_gaps()) >= 4
            await fake.wait_until(lambda: math.isfinite(bot.latency), timeout=3, what="an acknowledged heartbeat")
            assert bot.latency > 0
        fake.assert_clean()


@pytest.mark.fake_refusals  # the 401 is the point
async def test_wrong_token_is_refused(fake: FakeDiscord) -> None:
    bot = TinyBot()
    with pytest.raises(discord.LoginFailure):
        await bot.login("not-the-token")
    await bot.close()
    assert fake.requests[0].status == 401


@pytest.mark.fake_unchecked  # provokes a refusal and an unknown route to see them reported
async def test_refusals_are_loud(fake: FakeDiscord, bot: TinyBot) -> None:
    too_long = await fake.slash("toolong")
    with pytest.raises(AssertionError, match="50035"):
        await too_long.response()
    assert not too_long.acknowledged
    [refused] = fake.api_errors
    assert refused.status == 400 and refused.route == "/interactions/{interaction_id}/{token}/callback"
    with pytest.raises(AssertionError, match="refused"):
        fake.assert_clean()

    async with aiohttp.ClientSession() as session:
        async with session.get(
            fake.rest_base + "/no/such/route", headers={"Authorization": f"Bot {fake.token}"}
        ) as response:
            assert response.status == 404
            assert response.headers["Content-Type"] == "application/json"
    assert [r.path for r in fake.unknown_routes] == ["/no/such/route"]


async def test_late_callback_is_refused_like_discord_does() -> None:
    async with FakeDiscord(guilds=[FakeGuild(id=GUILD_ID)], interaction_deadline=0.1) as fake, fake.patch_discord():
        async with running_bot(fake):
            handle = await fake.slash("sleepy")
            with pytest.raises(LateInteraction):
                await handle.response()
        assert handle.late and handle.latency is not None and handle.latency > 0.1


async def test_latency_of_concurrent_interactions(fake: FakeDiscord, bot: TinyBot) -> None:
    handles = await asyncio.gather(*(fake.slash("ping") for _ in range(200)))
    await asyncio.gather(*(handle.response() for handle in handles))
    latencies = fake.latencies()
    assert len(latencies) == 200 and min(latencies) > 0
    assert all(handle.response_type == 4 for handle in handles)
    # How long they took (no request may wait on a dropped SYN's 1 s TCP retry, which is why the
    # fake listens with a deep backlog) is measured by benchmarks/bench_bot.py, not asserted here.
    fake.assert_clean()


class _Node:
    """Just enough of a pytest item for ``check_fake_at_teardown``: the markers it carries."""

    def __init__(self, *markers: str) -> None:
        self.markers = set(markers)

    def get_closest_marker(self, name: str) -> object:
        return name if name in self.markers else None


class _Request:
    def __init__(self, *markers: str) -> None:
        self.node = _Node(*markers)


@pytest.mark.fake_unchecked  # leaves a refusal and an unknown route behind on purpose
async def test_the_teardown_check_fails_unless_the_test_opted_out(fake: FakeDiscord) -> None:
    """The automatic teardown check is a check that can fail."""
    check_fake_at_teardown(fake, _Request())  # nothing happened yet: clean
    bot = TinyBot()
    with pytest.raises(discord.LoginFailure):
        await bot.login("not-the-token")
    await bot.close()
    with pytest.raises(AssertionError, match="refused: GET /users/@me -> 401"):
        check_fake_at_teardown(fake, _Request())
    check_fake_at_teardown(fake, _Request("fake_refusals"))
    async with aiohttp.ClientSession() as session:
        await session.get(fake.rest_base + "/no/such/route", headers={"Authorization": f"Bot {fake.token}"})
    with pytest.raises(AssertionError, match="unknown route"):
        check_fake_at_teardown(fake, _Request("fake_refusals"))  # refusals allowed, unknown routes never
    check_fake_at_teardown(fake, _Request("fake_unchecked"))
