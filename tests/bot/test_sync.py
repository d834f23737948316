"""Command sync happens at start only when the definitions changed, to the dev server if set;
the invite link asks for exactly the scopes the bot needs."""
from __future__ import annotations

import logging
from dataclasses import replace

import discord
import pytest
from discord import app_commands

from bot.errors import EXIT_CONFIG, StartupError
from tests.support.fake_discord import FakeDiscord
from tests.support.harness import GUILD_A, MEMBER, OWNER, Harness, _TestDinoBot, make_guild, running

EXPECTED = {"dinoname", "dinoinfo", "submit", "names", "review", "settings", "retrain", "models", "help"}


async def test_syncs_globally_once_then_only_when_commands_change(fake, bot_config):
    harness = Harness(fake, bot_config)
    await harness.start()
    assert fake.sync_count(None) == 1
    assert {c["name"] for c in fake.commands(None)} == EXPECTED
    await fake.drop_connection()  # a reconnect (and on_ready) never syncs
    await fake.wait_for_resume()
    await harness.restart()  # same definitions: the stored hash says there is nothing to do
    assert fake.sync_count(None) == 1
    await harness.stop()

    class WithExtraCommand(_TestDinoBot):
        async def setup_hook(self) -> None:
            @app_commands.command(name="roar", description="A new command")
            async def roar(interaction: discord.Interaction) -> None:
                await interaction.response.send_message("ROAR")
            self.tree.add_command(roar)
            await super().setup_hook()

    bot = WithExtraCommand(bot_config, guild_ready_timeout=0.05)
    await bot.login(fake.token)
    try:
        # setup_hook ran inside login: it synced, because the definitions changed
        assert fake.sync_count(None) == 2 and "roar" in {c["name"] for c in fake.commands(None)}
    finally:
        await bot.close()
    fake.assert_clean()


async def test_a_dev_guild_gets_the_commands_instantly_and_global_stays_untouched(fake, bot_config):
    async with running(fake, replace(bot_config, dev_guild_id=GUILD_A)):
        assert fake.sync_count(GUILD_A) == 1 and fake.sync_count(None) == 0
        assert {c["name"] for c in fake.commands(GUILD_A)} == EXPECTED
        reply = await (await fake.slash("dinoname", user=MEMBER)).response()
        assert reply["type"] == 4


async def test_admin_commands_are_hidden_from_members_by_default(fake, bot_config):
    async with running(fake, bot_config):
        permissions = {c["name"]: c.get("default_member_permissions") for c in fake.commands(None)}
        manage_guild = discord.Permissions(manage_guild=True).value
        assert {int(permissions[name]) for name in ("retrain", "review", "settings")} == {manage_guild}
        assert permissions["dinoname"] is None and permissions["submit"] is None


async def test_the_invite_link_asks_for_bot_and_commands_scopes_and_no_permissions(fake, bot_config, caplog):
    caplog.set_level(logging.INFO, logger="bot.app")
    harness = Harness(fake, bot_config)
    await harness.start()
    await harness.stop()
    links = [r.getMessage() for r in caplog.records if "invite DinoBot" in r.getMessage()]
    assert len(links) == 1
    assert f"client_id={fake.application_id}" in links[0]
    assert "scope=bot+applications.commands" in links[0] and "permissions=0" in links[0]


async def test_a_new_application_with_the_same_data_folder_gets_its_commands(fake, bot_config):
    """The sync state is per application: another token's bot is not "unchanged"."""
    harness = Harness(fake, bot_config)
    await harness.start()
    await harness.stop()
    assert fake.sync_count(None) == 1
    guilds = [make_guild(GUILD_A, "Dino Club")]
    async with FakeDiscord(guilds=guilds, token="another-token", application_id=424242424242424242,
                           owner=OWNER) as other, other.patch_discord():
        second = Harness(other, bot_config)
        await second.start()
        try:
            assert other.sync_count(None) == 1
            assert {c["name"] for c in other.commands(None)} == EXPECTED
            reply = await (await other.slash("dinoname", user=MEMBER)).response()
            assert reply["type"] == 4
        finally:
            await second.stop()
        other.assert_clean()
    await harness.start()  # back to the first application: its commands are still current
    await harness.stop()
    assert fake.sync_count(None) == 1


async def test_a_sync_can_be_forced(fake, bot_config, caplog):
    caplog.set_level(logging.INFO, logger="bot.ui.command_sync")
    harness = Harness(fake, bot_config)
    await harness.start()
    await harness.restart()
    assert fake.sync_count(None) == 1 and "--sync" in caplog.text  # the unchanged message says how to force
    await harness.stop()
    await harness.start(force_sync=True)
    await harness.stop()
    assert fake.sync_count(None) == 2
    assert f"synced {len(EXPECTED)} slash commands (global, forced)" in caplog.text


async def test_switching_from_a_dev_server_to_global_removes_the_dev_servers_commands(fake, bot_config):
    harness = Harness(fake, replace(bot_config, dev_guild_id=GUILD_A))
    await harness.start()
    await harness.stop()
    assert {c["name"] for c in fake.commands(GUILD_A)} == EXPECTED and fake.commands(None) == []
    async with running(fake, bot_config) as harness:
        assert {c["name"] for c in fake.commands(None)} == EXPECTED
        assert fake.commands(GUILD_A) == [], "no second copy of every command in the old dev server"
        assert [call.guild_id for call in fake.sync_calls] == [GUILD_A, None, GUILD_A]
        command, scope = fake.find_command("dinoname", GUILD_A)
        assert command is not None and scope is None  # members there now use the global one
    await harness.start()  # the removal is done once, not at every start
    await harness.stop()
    assert len(fake.sync_calls) == 3


@pytest.mark.fake_refusals  # the 403 is the point
async def test_a_dev_server_the_bot_is_not_in_is_one_clear_error(fake, bot_config):
    bot = _TestDinoBot(replace(bot_config, dev_guild_id=4242), guild_ready_timeout=0.05)
    try:
        with pytest.raises(StartupError) as caught:
            await bot.login(fake.token)  # setup_hook syncs inside login
    finally:
        await bot.close()
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_CONFIG and "\n" not in message
    assert message.startswith("DEV_GUILD_ID") and "4242" in message and "not in that server" in message
    assert f"client_id={fake.application_id}" in message  # the invite link that fixes it
    assert [(r.status, r.path) for r in fake.api_errors] == [
        (403, f"/applications/{fake.application_id}/guilds/4242/commands")]
