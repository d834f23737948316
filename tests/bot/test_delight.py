"""Prefix suggestions, /help, 📖 Meaning and /dinoname private:True through the fake Discord."""
from __future__ import annotations

import pytest

from bot.cogs.help import EXAMPLES, leaf_commands
from tests.bot.test_keep import dinoname, pin_names, private_text
from tests.support.harness import ADMIN, GUILD_A, MEMBER, OWNER

EPHEMERAL = 64
MEANING_MENU = "dino:meaning-menu"


# ---------------------------------------------------------------------- autocomplete


async def suggestions(dino, typed: str, **kwargs) -> list[dict]:
    handle = await dino.fake.autocomplete("dinoname", {"prefix": typed}, "prefix", **kwargs)
    response = await handle.response()  # raises LateInteraction if past Discord's 3 s
    assert response["type"] == 8
    return response["data"]["choices"]


async def test_typing_a_prefix_suggests_names_the_servers_model_makes(dino):
    choices = await suggestions(dino, "Tyr", user=MEMBER)
    assert choices[0] == {"name": "tyr… (any name starting with “tyr”)", "value": "tyr"}
    names = [c["value"] for c in choices[1:]]
    assert len(names) >= 3 and all(n.startswith("tyr") and n != "tyr" for n in names)
    assert [c["name"] for c in choices[1:]] == [n.capitalize() for n in names]
    assert not set(names) & await dino.bot.store.names.submitted(GUILD_A)
    assert await suggestions(dino, "Tyr") == choices  # cached per (server, model, prefix)
    dino.fake.assert_clean()


@pytest.mark.parametrize("typed", ["ty7", "t rex", "🦖", "straße", "a" * 31])
async def test_junk_gets_no_choices_and_no_error(dino, typed):
    assert await suggestions(dino, typed) == []
    dino.fake.assert_clean()


async def test_an_empty_box_still_gets_suggestions_and_dms_work(dino):
    assert len(await suggestions(dino, "")) >= 3
    assert all(c["value"].startswith("ra") for c in await suggestions(dino, "ra", guild=None, user=MEMBER))


# ---------------------------------------------------------------------- /help


def help_fields(data: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in data["embeds"][0]["fields"]}


async def test_help_lists_member_commands_with_examples_privately(dino):
    data = (await (await dino.fake.slash("help", user=MEMBER)).response())["data"]
    assert data["flags"] & EPHEMERAL
    fields = help_fields(data)
    assert "/dinoname" in fields and "/names top" in fields and "/submit" in fields
    assert "e.g. `/dinoname prefix:tyr count:3 private:True`" in fields["/dinoname"]
    assert not [name for name in fields if "moderators" in name]
    assert not {"/review", "/retrain", "/models", "/settings", "/names remove"} & set(fields)
    dino.fake.assert_clean()


async def test_help_shows_moderators_their_commands_too(dino):
    fields = help_fields((await (await dino.fake.slash("help", user=ADMIN)).response())["data"])
    for command in ("/review", "/retrain", "/models", "/settings", "/names remove"):
        assert f"{command} · moderators" in fields
    assert "e.g. `/models use:2`" in fields["/models · moderators"]
    dm = help_fields((await (await dino.fake.slash("help", guild=None, user=OWNER)).response())["data"])
    assert not [name for name in dm if "moderators" in name]  # no server, no moderator commands


async def test_every_command_has_a_help_example(dino):
    names = {c.qualified_name for c in leaf_commands(dino.bot.tree)}
    assert names == set(EXAMPLES)
    assert all(EXAMPLES[name].startswith(f"/{name}") for name in names)


# ---------------------------------------------------------------------- 📖 Meaning


async def test_meaning_explains_a_name_by_its_roots_privately(dino):
    pin_names(dino.bot, "tyrannotitan")
    reply = await dinoname(dino)
    handle = await dino.fake.click(reply, label="Meaning", user=MEMBER)
    data = (await handle.response())["data"]
    assert data["flags"] & EPHEMERAL
    embed = data["embeds"][0]
    assert embed["title"] == "📖 Tyrannotitan"
    assert embed["description"].startswith("*tyranno* (Greek, tyrant)\n+ *titan* (Greek, giant)")
    assert "12 of 12 letters explained" in embed["footer"]["text"]
    dino.fake.assert_clean()


async def test_meaning_is_honest_about_parts_it_cannot_explain_and_survives_a_restart(dino):
    pin_names(dino.bot, "xqsaurus", "brontofex")
    reply = await dinoname(dino, {"count": 2})
    await dino.restart()
    handle = await dino.fake.click(reply, MEANING_MENU, values=["xqsaurus"])
    text = await private_text(handle)
    assert text.startswith("*xq* — no known root\n+ *saurus* (Greek, lizard)")
    dino.fake.assert_clean()


# ---------------------------------------------------------------------- private:True


async def test_private_names_are_ephemeral_and_so_is_more(dino):
    handle = await dino.fake.slash("dinoname", {"prefix": "ra", "count": 3, "private": True}, user=MEMBER)
    data = (await handle.response())["data"]
    assert data["flags"] & EPHEMERAL and len(data["embeds"][0]["description"].split("\n")) == 3
    more = await dino.fake.click(handle.original, label="More", user=MEMBER)
    assert (await more.response())["data"]["flags"] & EPHEMERAL
    public = await dino.fake.slash("dinoname", {"count": 10}, user=MEMBER)
    assert not (await public.response())["data"].get("flags", 0) & EPHEMERAL
    dino.fake.assert_clean()


async def test_ten_names_with_every_control_fit_discords_limits(dino):
    pin_names(dino.bot, *(f"{'x' * 27}saur{chr(97 + i)}" for i in range(10)))  # 32 letters each
    handle = await dino.fake.slash("dinoname", {"prefix": "x" * 27, "count": 10, "temperature": 2.0})
    reply = (await handle.response())["data"]
    assert len(reply["components"]) == 3  # keep menu, meaning menu, More
    dino.fake.assert_clean()  # the fake refuses anything over Discord's limits


async def test_prebuilt_controls_are_what_the_item_classes_render():
    """Replies send JSON built from prototypes; it must match discord.py's rendering of the
    dynamic items that answer the clicks (options aside, which carry only label and value)."""
    import discord

    from bot.cogs.generate import MoreButton, reply_components
    from bot.cogs.keep import KeepButton, KeepMenu
    from bot.cogs.meaning import MeaningButton, MeaningMenu
    from bot.services.generation import Generated, Invented

    def strip(component: dict) -> dict:
        return {k: v for k, v in component.items() if k != "options"}

    def rows(*items) -> list[dict]:
        view = discord.ui.View(timeout=None)
        for item in items:
            view.add_item(item)
        return view.to_components()

    one = Generated([Invented("tyrannotitan", False, True)], None, "tyr", 1)
    assert reply_components(one, 1, 0.8, private=True, in_server=True).to_components() == rows(
        KeepButton("tyrannotitan"), MeaningButton("tyrannotitan"), MoreButton("tyr", 1, 0.8, True))
    names = ["quillodon", "brontofex", "velvetops"]
    several = Generated([Invented(n, False, True) for n in names], None, "", 3)
    built = reply_components(several, 3, 1.0, private=False, in_server=True).to_components()
    expected = rows(KeepMenu(names), MeaningMenu(names), MoreButton("", 3, 1.0))
    assert [[strip(c) for c in r["components"]] for r in built] == [
        [strip(c) for c in r["components"]] for r in expected]
    assert [o["value"] for o in built[0]["components"][0]["options"]] == names
