"""/dinoname and /dinoinfo through the real discord.py client and the fake Discord."""
from __future__ import annotations

import numpy as np
import pytest

from model import sample_names
from tests.support.harness import GUILD_A, GUILD_B, MEMBER, OTHER_MEMBER
from tests.support.wording import assert_sentence

EPHEMERAL = 64
UPDATE_MESSAGE = 7


def embed_names(message_or_data) -> list[str]:
    embeds = message_or_data["embeds"] if isinstance(message_or_data, dict) else message_or_data.embeds
    lines = embeds[0]["description"].split("\n")
    return [line.split("**")[1].lower().rstrip("…") for line in lines if line.startswith("**")]


async def test_dinoname_answers_with_an_embed_and_a_more_button(dino):
    handle = await dino.fake.slash("dinoname", user=MEMBER)
    reply = await handle.response()
    assert reply["type"] == 4
    names = embed_names(reply["data"])
    assert len(names) == 1 and names[0].isalpha()
    assert handle.original.find_component(label="More") is not None
    dino.fake.assert_clean()


async def test_prefix_count_and_temperature_are_honoured(dino):
    reply = await (await dino.fake.slash("dinoname", {"prefix": "Tyr", "count": 5, "temperature": 0.7})).response()
    names = embed_names(reply["data"])
    assert len(names) == 5 and all(n.startswith("tyr") for n in names)
    assert "prefix “tyr”" in reply["data"]["embeds"][0]["footer"]["text"]


def labels(data: dict) -> dict[str, str]:
    """{name: label} for every name line of a /dinoname embed ("real", "new" or "" for none)."""
    found = {}
    for line in data["embeds"][0]["description"].split("\n"):
        if line.startswith("**"):
            name = line.split("**")[1].lower().rstrip("…")
            found[name] = "real" if "*a real dinosaur!*" in line else "new" if "✨ brand new" in line else ""
    return found


async def test_real_dinosaurs_are_labelled_and_every_other_name_is_marked_brand_new(dino):
    known = dino.bot.known_names
    # At temperature 0.3 this prefix completes to the real Tyrannosaurus (3,000 of 3,000 samples).
    reply = await (await dino.fake.slash("dinoname", {"prefix": "tyrannosauru", "temperature": 0.3})).response()
    assert labels(reply["data"]) == {"tyrannosaurus": "real"}
    reply = await (await dino.fake.slash("dinoname", {"count": 10, "temperature": 0.3})).response()
    found = labels(reply["data"])
    assert len(found) == 10
    assert found == {name: "real" if name in known else "new" for name in found}


@pytest.mark.parametrize("prefix, fragment", [
    ("ty7", "digit '7'"), ("t rex", "a space"), ("🦖", "not a letter"), ("straße", "sharp s"),
])
async def test_a_bad_prefix_gets_a_short_private_explanation(dino, prefix, fragment):
    reply = await (await dino.fake.slash("dinoname", {"prefix": prefix})).response()
    assert reply["data"]["flags"] & EPHEMERAL
    assert fragment.lower() in reply["data"]["content"].lower()
    assert_sentence(reply["data"]["content"])


async def test_more_reuses_the_options_and_survives_a_restart(dino):
    first = await dino.fake.slash("dinoname", {"prefix": "raptor", "count": 3})
    await first.response()
    again = await dino.fake.click(first.original, label="More")
    names = embed_names((await again.response())["data"])
    assert len(names) == 3 and all(n.startswith("raptor") for n in names)
    await dino.restart()
    after = await dino.fake.click(first.original, label="More")
    names = embed_names((await after.response())["data"])
    assert len(names) == 3 and all(n.startswith("raptor") for n in names)
    dino.fake.assert_clean()


async def test_names_the_server_already_has_are_never_suggested(dino):
    store = dino.bot.store
    likely = sample_names(dino.bot.registry.base.model, 30, prefix="zu", temperature=0.3,
                          avoid=store.names.known_names, rng=np.random.default_rng(0))  # refused by the store
    for user, sample in enumerate(likely):  # the likeliest names, each from its own member
        await store.names.submit(GUILD_A, 10_000 + user, sample.name)
    taken = await store.names.submitted(GUILD_A)
    reply = await (await dino.fake.slash("dinoname", {"prefix": "zu", "count": 10, "temperature": 0.6})).response()
    names = embed_names(reply["data"])
    assert len(names) == 10 and not set(names) & taken


async def test_works_in_dms_with_the_base_model(dino):
    reply = await (await dino.fake.slash("dinoname", {"count": 2}, guild=None, user=MEMBER)).response()
    assert len(embed_names(reply["data"])) == 2
    assert "base model" in reply["data"]["embeds"][0]["footer"]["text"]


async def test_dinoinfo_describes_the_base_model(dino):
    reply = await (await dino.fake.slash("dinoinfo", guild=GUILD_B)).response()
    fields = {f["name"]: f["value"] for f in reply["data"]["embeds"][0]["fields"]}
    assert fields["Model"] == "The base model" and fields["Network"] == "3 × LSTM-64 + 6-gram"
    assert "nats/letter" in fields["Validation loss"]  # the one place the unit is shown
    assert "DinoBot" in reply["data"]["embeds"][0]["footer"]["text"]


async def test_more_edits_in_place_for_the_asker_and_answers_anyone_else_privately(dino):
    """More must not flood a channel: the asker's names are replaced, others get their own privately."""
    first = await dino.fake.slash("dinoname", {"prefix": "zu", "count": 2}, user=MEMBER)
    await first.response()
    channel = first.original.channel_id
    in_channel = len(dino.fake.channel_messages(channel))
    mine = await dino.fake.click(first.original, label="More", user=MEMBER)
    reply = await mine.response()
    assert reply["type"] == UPDATE_MESSAGE and len(embed_names(reply["data"])) == 2
    assert embed_names(first.original.to_payload()) == embed_names(reply["data"])  # the same message, new names
    theirs = await dino.fake.click(first.original, label="More", user=OTHER_MEMBER)
    private = await theirs.response()
    assert private["type"] == 4 and private["data"]["flags"] & EPHEMERAL
    assert len(embed_names(private["data"])) == 2 and theirs.original.find_component(label="More") is not None
    again = await dino.fake.click(theirs.original, label="More", user=OTHER_MEMBER)  # their own: edited
    assert (await again.response())["type"] == UPDATE_MESSAGE
    public = [m for m in dino.fake.channel_messages(channel) if not m.ephemeral]
    assert len(public) == in_channel  # nothing new in the channel for anyone to scroll past
    dino.fake.assert_clean()


async def test_more_spends_the_same_budget_as_dinoname(fake, tmp_path):
    """Issue 8: once a member's /dinoname budget was spent, 40 of 40 More presses were answered."""
    from tests.support.harness import make_config, running
    async with running(fake, make_config(tmp_path / "d", generate_rate=(3, 30.0))):
        first = await fake.slash("dinoname", user=MEMBER)
        assert (await first.response())["type"] == 4
        for _ in range(2):  # uses 2 and 3 of 3
            assert (await (await fake.click(first.original, label="More", user=MEMBER)).response())["type"] == 7
        for _ in range(5):
            refused = await (await fake.click(first.original, label="More", user=MEMBER)).response()
            assert refused["data"]["flags"] & EPHEMERAL and "Slow down" in refused["data"]["content"]
        refused = await (await fake.slash("dinoname", user=MEMBER)).response()
        assert "Slow down" in refused["data"]["content"]
        other = await (await fake.click(first.original, label="More", user=OTHER_MEMBER)).response()
        assert other["data"].get("embeds")  # the budget is per member
        fake.assert_clean()


async def test_generation_cooldown_refuses_politely(fake, tmp_path):
    from tests.support.harness import make_config, running
    async with running(fake, make_config(tmp_path / "d", generate_rate=(2, 30.0))):
        for _ in range(2):
            assert (await (await fake.slash("dinoname", user=MEMBER)).response())["type"] == 4
        reply = await (await fake.slash("dinoname", user=MEMBER)).response()
        assert reply["data"]["flags"] & EPHEMERAL and "Slow down" in reply["data"]["content"]
