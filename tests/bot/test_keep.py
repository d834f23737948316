"""⭐ Keep and /names top through the real discord.py client and the fake Discord.

Generation is pinned to known names here (``pin_names``), so each test knows which names its
reply offers; everything after the click (the store's checks, the reply) is the real thing.
"""
from __future__ import annotations

import re

import pytest

from bot.services.generation import Generated, Invented
from tests.support.harness import ADMIN, GUILD_A, GUILD_B, MEMBER, OTHER_MEMBER, make_config, running
from tests.support.wording import assert_sentence

EPHEMERAL = 64
KEEP_MENU = "dino:keep-menu"


def pin_names(bot, *names: str, known: tuple[str, ...] = ()) -> None:
    """Make /dinoname answer with exactly ``names`` (``known`` ones labelled real dinosaurs)."""
    async def generate(guild_id, prefix="", count=1, temperature=1.0):
        served = bot.registry.base if guild_id is None else await bot.registry.get(guild_id)
        return Generated([Invented(n, n in known, True) for n in names], served, prefix or "", count)
    bot.generator.generate = generate


async def dinoname(dino, options: dict | None = None, *, user=MEMBER, guild=GUILD_A):
    handle = await dino.fake.slash("dinoname", options or {}, user=user, guild=guild)
    assert (await handle.response())["type"] == 4
    return handle.original


async def private_text(handle) -> str:
    data = (await handle.response())["data"]
    assert data["flags"] & EPHEMERAL, data
    return data.get("content") or data["embeds"][0]["description"]


async def keep(dino, message, user=MEMBER, name: str | None = None) -> str:
    if name is None:
        handle = await dino.fake.click(message, label="Keep", user=user)
    else:
        handle = await dino.fake.click(message, KEEP_MENU, values=[name], user=user)
    text = await private_text(handle)
    for line in text.split("\n"):  # sentences, no jargon (nats), no traceback
        assert_sentence(line)
    return text


async def test_one_click_keeps_the_name_for_the_clicker_privately(dino):
    pin_names(dino.bot, "glimmerosaurus")
    reply = await dinoname(dino, user=OTHER_MEMBER)
    assert [c["label"] for c in reply.iter_components() if c.get("label")] == ["Keep", "Meaning", "More"]
    text = await keep(dino, reply, user=MEMBER)
    assert "⭐ You kept **Glimmerosaurus**: it joins this server's names" in text
    assert re.search(r"more dinosaur-like than \d+ % of real dinosaur names", text) and "nats" not in text
    sub = await dino.bot.store.names.get(GUILD_A, "glimmerosaurus")
    assert sub.submitter_id == MEMBER.id  # the clicker, not the member who asked for the names
    public = [m for m in dino.fake.channel_messages(reply.channel_id) if not m.ephemeral]
    assert public == [reply]  # the keep's answer is private
    dino.fake.assert_clean()


async def test_several_keeps_are_votes_and_a_second_keep_by_the_same_member_is_refused(dino):
    pin_names(dino.bot, "glimmerosaurus")
    reply = await dinoname(dino)
    await keep(dino, reply, user=MEMBER)
    vote = await keep(dino, reply, user=OTHER_MEMBER)
    assert "You kept **Glimmerosaurus** too: **2** members have kept it" in vote
    assert f"first kept by <@{MEMBER.id}>" in vote
    again = await keep(dino, reply, user=MEMBER)
    assert "already kept 'glimmerosaurus'" in again
    assert await dino.bot.store.names.count(GUILD_A) == 1
    assert await dino.bot.store.keeps.count(GUILD_A, "glimmerosaurus") == 2
    dino.fake.assert_clean()


async def test_the_menu_keeps_one_of_several_names_and_works_after_a_restart(dino):
    pin_names(dino.bot, "quillodon", "brontofex", "velvetops")
    reply = await dinoname(dino, {"count": 3})
    menu = reply.find_component(KEEP_MENU)
    assert [o["value"] for o in menu["options"]] == ["quillodon", "brontofex", "velvetops"]
    assert reply.find_component(label="Keep") is None  # a menu, not a button per name
    await dino.restart()
    text = await keep(dino, reply, name="brontofex")
    assert "You kept **Brontofex**" in text
    assert [s.name for s in await dino.bot.store.names.list(GUILD_A)] == ["brontofex"]
    dino.fake.assert_clean()


async def test_real_dinosaurs_are_not_offered_and_refused_if_kept_anyway(dino):
    pin_names(dino.bot, "tyrannosaurus", known=("tyrannosaurus",))
    labelled = await dinoname(dino)
    assert labelled.find_component(label="Keep") is None and labelled.find_component(label="Meaning")
    pin_names(dino.bot, "tyrannosaurus")  # a reply that failed to label it (an older bot, say)
    unlabelled = await dinoname(dino)
    assert "already a known dinosaur" in await keep(dino, unlabelled)
    assert await dino.bot.store.names.count(GUILD_A) == 0
    dino.fake.assert_clean()


async def test_keeping_with_review_on_waits_for_a_moderator(dino):
    await dino.bot.store.settings.update(GUILD_A, ADMIN.id, review_required=True)
    pin_names(dino.bot, "hushosaurus")
    text = await keep(dino, await dinoname(dino))
    assert "You kept **Hushosaurus**. It awaits review by a moderator" in text
    vote = await keep(dino, await dinoname(dino), user=OTHER_MEMBER)
    assert "**2** members have kept it" in vote and "still awaits a moderator's review" in vote
    dino.fake.assert_clean()


async def test_no_keeping_in_dms(dino):
    pin_names(dino.bot, "dmosaurus")
    reply = await dinoname(dino, guild=None)
    assert reply.find_component(label="Keep") is None and reply.find_component(label="More")
    dino.fake.assert_clean()


async def test_a_keep_over_the_daily_limit_is_refused_and_keeps_share_the_submit_cooldown(fake, tmp_path):
    async with running(fake, make_config(tmp_path / "d", daily_limit=2, submit_rate=(4, 60.0))) as harness:
        bot = harness.bot
        pin_names(bot, "limitosaurus")
        for name in ("firstosaurus", "secondosaurus"):  # uses 1-2 of 4 a minute; the day's 2 names
            data = (await (await fake.slash("submit", {"name": name}, user=MEMBER)).response())["data"]
            assert "joins this server's names" in data["content"]
        reply = await dinoname(harness, user=OTHER_MEMBER)
        over = await keep(harness, reply, user=MEMBER)  # use 3
        assert "You can submit 2 names per 24 hours" in over and "submit again in" in over
        assert await bot.store.keeps.count(GUILD_A, "limitosaurus") == 0
        assert "2 names per 24 hours" in await keep(harness, reply, user=MEMBER)  # use 4
        slow = await private_text(await fake.slash("submit", {"name": "thirdosaurus"}, user=MEMBER))
        assert "Slow down" in slow  # /submit finds the bucket the keeps used up
        assert "Slow down" in await keep(harness, reply, user=MEMBER)
        assert "You kept **Limitosaurus**" in await keep(harness, reply, user=OTHER_MEMBER)  # others unaffected
        fake.assert_clean()


async def test_names_top_ranks_by_keeps_with_the_first_keeper(dino):
    store = dino.bot.store
    for member, name in [(MEMBER.id, "alphaurus"), (OTHER_MEMBER.id, "betaurus")]:
        await store.keeps.keep(GUILD_A, member, name)
    await store.keeps.keep(GUILD_A, ADMIN.id, "betaurus")
    await store.keeps.keep(GUILD_B, MEMBER.id, "elsewhereaurus")
    handle = await dino.fake.slash("names top", user=MEMBER)
    data = (await handle.response())["data"]
    assert not data.get("flags", 0) & EPHEMERAL  # approved names are public
    embed = data["embeds"][0]
    assert embed["title"] == "⭐ Favourite names in Dino Club"
    lines = embed["description"].split("\n")
    assert lines[0].startswith("🥇 **Betaurus** · 2 keeps · first kept by <@503> <t:")
    assert lines[1].startswith("🥈 **Alphaurus** · 1 keep · first kept by <@502> <t:")
    assert len(lines) == 2 and data["allowed_mentions"] == {"parse": []}
    empty = (await (await dino.fake.slash("names top", guild=GUILD_B, user=MEMBER)).response())["data"]
    assert "Elsewhereaurus" in empty["embeds"][0]["description"]
    dino.fake.assert_clean()


async def test_names_top_when_nothing_is_kept_says_how(dino):
    data = (await (await dino.fake.slash("names top")).response())["data"]
    assert "Press ⭐ **Keep** on a `/dinoname` reply" in data["embeds"][0]["description"]


@pytest.mark.parametrize("typed, expected", [
    ("", ["alphaurus", "betaurus", "bigaurus"]), ("B", ["betaurus", "bigaurus"]), ("bi", ["bigaurus"]),
    ("x7", []), ("🦖", []),
])
async def test_names_remove_autocompletes_the_servers_names_for_moderators(dino, typed, expected):
    for member, name in enumerate(["alphaurus", "betaurus", "bigaurus", "goneaurus"]):
        await dino.bot.store.names.submit(GUILD_A, 30_000 + member, name)
    await dino.bot.store.names.set_status(GUILD_A, "goneaurus", "removed", ADMIN.id)
    await dino.bot.store.names.submit(GUILD_B, 30_000, "bravoaurus")
    handle = await dino.fake.autocomplete("names remove", {"name": typed}, "name", user=ADMIN)
    choices = (await handle.response())["data"]["choices"]
    assert [c["value"] for c in choices] == expected
    member = await dino.fake.autocomplete("names remove", {"name": typed}, "name", user=MEMBER)
    assert (await member.response())["data"]["choices"] == []  # pending names are not for everyone
    dino.fake.assert_clean()
