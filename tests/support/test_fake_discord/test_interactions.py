"""Injected interactions round-trip through the real discord.py client: slash commands, edits and
followups, selects and autocomplete, buttons and files, subcommands, permissions and DMs, modals."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.fake_discord import MANAGE_GUILD, FakeDiscord, FakeUser
from tests.support.test_fake_discord.tiny_bot import GUILD_ID, OTHER_GUILD_ID, TinyBot, running_bot


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
