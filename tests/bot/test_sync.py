"""Command sync happens at start only when the definitions changed, to the dev server if set;
the invite link asks for exactly the scopes the bot needs."""
from __future__ import annotations

import logging
from dataclasses import replace

import discord
from discord import app_commands

from tests.support.harness import GUILD_A, MEMBER, Harness, _TestDinoBot

EXPECTED = {"dinoname", "dinoinfo", "submit", "names", "review", "settings", "retrain"}


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
    harness = Harness(fake, replace(bot_config, dev_guild_id=GUILD_A))
    await harness.start()
    try:
        assert fake.sync_count(GUILD_A) == 1 and fake.sync_count(None) == 0
        assert {c["name"] for c in fake.commands(GUILD_A)} == EXPECTED
        reply = await (await fake.slash("dinoname", user=MEMBER)).response()
        assert reply["type"] == 4
    finally:
        await harness.stop()


async def test_admin_commands_are_hidden_from_members_by_default(fake, bot_config):
    harness = Harness(fake, bot_config)
    await harness.start()
    try:
        permissions = {c["name"]: c.get("default_member_permissions") for c in fake.commands(None)}
        manage_guild = discord.Permissions(manage_guild=True).value
        assert {int(permissions[name]) for name in ("retrain", "review", "settings")} == {manage_guild}
        assert permissions["dinoname"] is None and permissions["submit"] is None
    finally:
        await harness.stop()


async def test_the_invite_link_asks_for_bot_and_commands_scopes_and_no_permissions(fake, bot_config, caplog):
    caplog.set_level(logging.INFO, logger="bot.app")
    harness = Harness(fake, bot_config)
    await harness.start()
    await harness.stop()
    links = [r.getMessage() for r in caplog.records if "invite DinoBot" in r.getMessage()]
    assert len(links) == 1
    assert f"client_id={fake.application_id}" in links[0]
    assert "scope=bot+applications.commands" in links[0] and "permissions=0" in links[0]
