"""/submit, /names list|remove, /review and /settings: the real bot, real SQLite, the fake Discord."""
from __future__ import annotations

import pytest

from bot.services.likeness import percentile_of
from bot.services.store import Status
from model import read_names, score_names, val_path
from tests.support.fake_discord import FakeUser
from tests.support.harness import ADMIN, GUILD_A, GUILD_B, MEMBER, OTHER_MEMBER, make_config, running
from tests.support.wording import assert_sentence

EPHEMERAL = 64
MANAGE_GUILD_VALUE = 32


async def reply_of(handle) -> dict:
    """The callback body's data, after checking the bot answered with a message."""
    response = await handle.response()
    assert response["type"] in (4, 7), response
    return response["data"]


async def listing_of(handle) -> dict:
    """``/names list file:True``: deferred at once (Discord's 3 s), then the reply is edited in."""
    response = await handle.response()
    assert response["type"] == 5, response
    await handle.wait_for_edits(1)
    return handle.original.to_payload()


def is_ephemeral(data: dict) -> bool:
    return bool(data.get("flags", 0) & EPHEMERAL)


def listed(embed: dict) -> list[str]:
    """Names shown in a /names list embed, in display order."""
    return [line.split("**")[1].lower() for line in embed["description"].split("\n")[1:]]


def corpus_percentile(dino, name: str) -> int:
    """The percentile computed here from scratch: the base model's scores of the shipped val names."""
    model = dino.bot.registry.base.model
    corpus = sorted(score_names(model, read_names(val_path())))
    return percentile_of(score_names(model, [name])[0], corpus)


async def submit(dino, name: str, *, user=MEMBER, guild=GUILD_A) -> dict:
    return await reply_of(await dino.fake.slash("submit", {"name": name}, user=user, guild=guild))


async def enable_review(dino, guild: int = GUILD_A) -> None:
    data = await reply_of(await dino.fake.slash("settings", {"review": True}, user=ADMIN, guild=guild))
    assert "Review: off → **on**" in data["content"]


# ---------------------------------------------------------------------- command definitions


async def test_admin_commands_are_hidden_but_names_list_is_not(dino):
    synced = {c["name"]: c for c in dino.fake.commands()}
    for name in ("review", "settings"):
        assert int(synced[name]["default_member_permissions"]) == MANAGE_GUILD_VALUE
    # Discord applies default permissions per top-level command only: the group must stay
    # visible for members (list), and remove is guarded at run time.
    assert synced["names"]["default_member_permissions"] is None
    assert {o["name"] for o in synced["names"]["options"]} == {"list", "top", "remove"}
    assert synced["submit"]["default_member_permissions"] is None
    dino.fake.assert_clean()


# ---------------------------------------------------------------------- /submit


async def test_submit_announces_the_normalised_name_and_its_score(dino):
    data = await submit(dino, "  GlimmeroSaurus ")
    assert not is_ephemeral(data)
    assert "**Glimmerosaurus** joins this server's names" in data["content"]
    percent = corpus_percentile(dino, "glimmerosaurus")
    assert 0 < percent < 100  # the shipped model: 1.451 nats/letter, 45 %
    assert f"finds it more dinosaur-like than {percent} % of real dinosaur names." in data["content"]
    assert "nats" not in data["content"]  # numbers members understand; nats stay in /dinoinfo
    assert data["allowed_mentions"] == {"parse": []}
    sub = await dino.bot.store.names.get(GUILD_A, "glimmerosaurus")
    assert (sub.status, sub.submitter_id) == (Status.APPROVED, MEMBER.id)
    dino.fake.assert_clean()


async def test_submit_puts_score_into_words(dino):
    dino_like = await submit(dino, "Brachiosaurix")
    gibberish = await submit(dino, "qxzqvkjw")
    percent = corpus_percentile(dino, "brachiosaurix")
    assert f"finds it more dinosaur-like than {percent} % of real dinosaur names" in dino_like["content"]
    assert "finds it less dinosaur-like than every real dinosaur name" in gibberish["content"]  # 5.564
    dino.fake.assert_clean()


async def test_submit_with_review_on_is_private_and_pending(dino):
    await enable_review(dino)
    data = await submit(dino, "Hushosaurus")
    assert is_ephemeral(data)
    assert "**Hushosaurus** is saved and awaits review" in data["content"]
    assert "% of real dinosaur names" in data["content"]
    assert (await dino.bot.store.names.get(GUILD_A, "hushosaurus")).status is Status.PENDING
    dino.fake.assert_clean()


@pytest.mark.parametrize("name, fragment", [
    ("raptor7", "digit '7'"),
    ("🦖saurus", "not a letter a–z"),
    ("a" * 40, "at most 32 letters"),
    ("t rex", "a space"),
    ("ab", "3–32 letters"),
])
async def test_invalid_names_get_a_private_explanation_and_store_nothing(dino, name, fragment):
    data = await submit(dino, name)
    assert is_ephemeral(data) and fragment.lower() in data["content"].lower(), data["content"]
    assert_sentence(data["content"])
    assert await dino.bot.store.names.count(GUILD_A) == 0
    dino.fake.assert_clean()


async def test_duplicates_and_known_dinosaurs_are_refused_privately(dino):
    await submit(dino, "Twiceosaurus")
    again = await submit(dino, "TWICEOSAURUS", user=OTHER_MEMBER)
    assert is_ephemeral(again) and "'twiceosaurus' has already been submitted" in again["content"]
    known = await submit(dino, "Tyrannosaurus")
    assert is_ephemeral(known) and "already a known dinosaur" in known["content"]
    assert [s.name for s in await dino.bot.store.names.list(GUILD_A)] == ["twiceosaurus"]
    dino.fake.assert_clean()


async def test_submit_is_refused_in_dms(dino):
    data = await submit(dino, "Dmosaurus", guild=None)
    assert is_ephemeral(data) and "only works in a server" in data["content"]
    dino.fake.assert_clean()


async def test_daily_limit_and_cooldown_refuse_politely(fake, tmp_path):
    async with running(fake, make_config(tmp_path / "d", daily_limit=2, submit_rate=(4, 60.0))) as harness:
        for name in ("Onesaurus", "Twosaurus"):
            assert not is_ephemeral(await submit(harness, name))
        over = await submit(harness, "Threesaurus")
        assert is_ephemeral(over) and "2 names per 24 hours" in over["content"]
        assert "submit again in" in over["content"]
        assert await harness.bot.store.names.count(GUILD_A) == 2
        # Another server has its own allowance.
        assert not is_ephemeral(await submit(harness, "Threesaurus", guild=GUILD_B))
        # The per-user cooldown (4 a minute here) comes on top; a fresh user has a fresh bucket.
        fresh = FakeUser(id=777_001, username="speedy")
        for name in ("Fastosaurus", "Quickosaurus", "Hastosaurus", "Zoomosaurus"):
            await submit(harness, name, user=fresh)
        slowed = await submit(harness, "Rushosaurus", user=fresh)
        assert is_ephemeral(slowed) and "Slow down" in slowed["content"]
        fake.assert_clean()


# ---------------------------------------------------------------------- /names list


async def add_names(dino, guild: int, names: list[str]) -> None:
    for user, name in enumerate(names):  # one member each: the daily limit stays out of the way
        await dino.bot.store.names.submit(guild, 20_000 + user, name)


async def test_names_list_shows_count_and_newest_first(dino):
    await add_names(dino, GUILD_A, ["alphaosaurus", "betaosaurus", "gammaosaurus"])
    data = await reply_of(await dino.fake.slash("names list", user=MEMBER))
    assert not is_ephemeral(data)
    embed = data["embeds"][0]
    assert embed["description"].startswith("**3** approved names")
    assert listed(embed) == ["gammaosaurus", "betaosaurus", "alphaosaurus"]
    assert "footer" not in embed and not data.get("attachments")
    dino.fake.assert_clean()


async def test_names_list_shows_the_latest_20_and_the_file_holds_all(dino):
    names = [f"listo{chr(97 + i // 26)}{chr(97 + i % 26)}saurus" for i in range(30)]
    await add_names(dino, GUILD_A, names)
    handle = await dino.fake.slash("names list", {"file": True}, user=MEMBER)
    data = await listing_of(handle)
    embed = data["embeds"][0]
    assert embed["description"].startswith("**30** approved names")
    assert listed(embed) == names[::-1][:20]
    assert "newest 20 of 30" in embed["footer"]["text"]
    (attachment,) = handle.original.attachments
    assert attachment.filename == "names.txt"
    assert attachment.text() == "\n".join(sorted(names)) + "\n"
    dino.fake.assert_clean()


async def test_the_whole_list_is_read_only_after_discord_has_its_acknowledgement(dino, monkeypatch):
    """Issue 8: with 500k names the list took ~5 s, past Discord's 3 s, and the member got
    nothing. Whatever the size, the interaction is deferred before the list is read."""
    names = [f"deferro{chr(97 + i // 26)}{chr(97 + i % 26)}saurus" for i in range(30)]
    await add_names(dino, GUILD_A, names)
    export, seen = dino.bot.store.names.export, []

    async def watched_export(*args):
        seen.extend(h.response_type for h in dino.fake.interactions.values() if h.payload["type"] == 2)
        return await export(*args)

    monkeypatch.setattr(dino.bot.store.names, "export", watched_export)
    handle = await dino.fake.slash("names list", {"file": True}, user=MEMBER)
    data = await listing_of(handle)
    assert seen == [5]  # acknowledged (deferred) before the export began
    assert not is_ephemeral(data) and handle.original.attachments[0].text() == "\n".join(sorted(names)) + "\n"
    dino.fake.assert_clean()


async def test_the_names_file_is_read_in_chunks_and_misses_nothing(dino, monkeypatch):
    from bot.services.store import submissions
    monkeypatch.setattr(submissions, "EXPORT_CHUNK", 7)
    names = [f"chunko{chr(97 + i // 26)}{chr(97 + i % 26)}saurus" for i in range(30)]
    await add_names(dino, GUILD_A, names)
    await dino.bot.store.names.set_status(GUILD_A, names[3], "removed", ADMIN.id)
    store = dino.bot.store.names
    assert await store.export(GUILD_A, "approved") == "".join(f"{n}\n" for n in sorted(names) if n != names[3])
    every = await store.export(GUILD_A)
    assert every.splitlines() == [f"{n}\t{'removed' if n == names[3] else 'approved'}" for n in sorted(names)]
    assert await store.export(GUILD_B) == ""


async def test_names_list_when_empty(dino):
    handle = await dino.fake.slash("names list", {"file": True}, guild=GUILD_B, user=MEMBER)
    data = await listing_of(handle)
    assert "No approved names yet" in data["embeds"][0]["description"]
    assert handle.original.attachments == []
    dino.fake.assert_clean()


async def test_other_statuses_are_for_moderators_and_private(dino):
    await add_names(dino, GUILD_A, ["keptosaurus", "goneosaurus"])
    await dino.bot.store.names.set_status(GUILD_A, "goneosaurus", "removed", ADMIN.id)
    refused = await reply_of(await dino.fake.slash("names list", {"status": "removed"}, user=MEMBER))
    assert is_ephemeral(refused) and "Only moderators" in refused["content"]
    handle = await dino.fake.slash("names list", {"status": "removed", "file": True}, user=ADMIN)
    data = await listing_of(handle)
    assert is_ephemeral(data) and listed(data["embeds"][0]) == ["goneosaurus"]
    assert handle.original.attachments[0].text() == "goneosaurus\n"
    every = await dino.fake.slash("names list", {"status": "all", "file": True}, user=ADMIN)
    data = await listing_of(every)
    assert data["embeds"][0]["description"].startswith("**2** names")
    assert "· removed" in data["embeds"][0]["description"]
    assert every.original.attachments[0].text() == "goneosaurus\tremoved\nkeptosaurus\tapproved\n"
    dino.fake.assert_clean()


async def test_names_list_is_refused_in_dms(dino):
    data = await reply_of(await dino.fake.slash("names list", guild=None, user=MEMBER))
    assert is_ephemeral(data) and "only works in a server" in data["content"]
    dino.fake.assert_clean()


async def test_names_never_cross_servers(dino):
    await submit(dino, "Clubosaurus", guild=GUILD_A)
    await enable_review(dino, GUILD_A)
    data = await reply_of(await dino.fake.slash("names list", {"status": "all"}, guild=GUILD_B, user=ADMIN))
    assert "No names yet" in data["embeds"][0]["description"]
    # The same name is new in the other server, and review there is still off.
    assert "joins this server's names" in (await submit(dino, "Clubosaurus", guild=GUILD_B))["content"]
    assert not (await dino.bot.store.settings.get(GUILD_B)).review_required
    data = await reply_of(await dino.fake.slash("names list", guild=GUILD_A))
    assert listed(data["embeds"][0]) == ["clubosaurus"]
    dino.fake.assert_clean()


# ---------------------------------------------------------------------- /names remove


async def test_admin_removes_a_name_without_deleting_it(dino):
    await add_names(dino, GUILD_A, ["keptosaurus", "oopsosaurus"])
    data = await reply_of(await dino.fake.slash("names remove", {"name": "OopsoSaurus"}, user=ADMIN))
    assert is_ephemeral(data) and "Removed **Oopsosaurus** (it was approved)" in data["content"]
    store = dino.bot.store
    sub = await store.names.get(GUILD_A, "oopsosaurus")
    assert (sub.status, sub.status_changed_by) == (Status.REMOVED, ADMIN.id)
    (entry,) = await store.audit.recent(GUILD_A)
    assert (entry.action, entry.actor_id, entry.details["name"]) == ("submission.removed", ADMIN.id, "oopsosaurus")
    listing = await reply_of(await dino.fake.slash("names list", user=MEMBER))
    assert listed(listing["embeds"][0]) == ["keptosaurus"]
    again = await reply_of(await dino.fake.slash("names remove", {"name": "oopsosaurus"}, user=ADMIN))
    assert "already removed" in again["content"]
    missing = await reply_of(await dino.fake.slash("names remove", {"name": "nosuchosaurus"}, user=ADMIN))
    assert is_ephemeral(missing) and "'nosuchosaurus' was not found" in missing["content"]
    assert len(await store.audit.recent(GUILD_A)) == 1
    dino.fake.assert_clean()


async def test_member_cannot_remove_and_nothing_changes(dino):
    await add_names(dino, GUILD_A, ["keptosaurus"])
    data = await reply_of(await dino.fake.slash("names remove", {"name": "keptosaurus"}, user=MEMBER))
    assert is_ephemeral(data) and "Manage Server" in data["content"] and "Nothing was changed" in data["content"]
    assert (await dino.bot.store.names.get(GUILD_A, "keptosaurus")).status is Status.APPROVED
    assert await dino.bot.store.audit.recent(GUILD_A) == []
    dino.fake.assert_clean()


# ---------------------------------------------------------------------- /review


async def test_review_when_off_says_so(dino):
    data = await reply_of(await dino.fake.slash("review", user=ADMIN))
    assert is_ephemeral(data) and "Review is off" in data["content"] and "/settings" in data["content"]
    dino.fake.assert_clean()


async def test_review_with_nothing_waiting(dino):
    await enable_review(dino)
    data = await reply_of(await dino.fake.slash("review", user=ADMIN))
    assert is_ephemeral(data) and "All reviewed" in data["content"]
    dino.fake.assert_clean()


async def test_member_cannot_review(dino):
    await enable_review(dino)
    data = await reply_of(await dino.fake.slash("review", user=MEMBER))
    assert is_ephemeral(data) and "Manage Server" in data["content"]
    dino.fake.assert_clean()


async def test_review_flow_with_buttons_survives_a_restart(dino):
    await enable_review(dino)
    for user, name in ((MEMBER, "Firstosaurus"), (OTHER_MEMBER, "Secondosaurus"), (MEMBER, "Thirdosaurus")):
        assert is_ephemeral(await submit(dino, name, user=user))
    handle = await dino.fake.slash("review", user=ADMIN)
    data = await reply_of(handle)
    assert is_ephemeral(data)
    embed = data["embeds"][0]
    assert embed["title"] == "📝 Firstosaurus" and f"<@{MEMBER.id}>" in embed["description"]
    assert "% of real dinosaur names" in embed["description"] and "2 more waiting" in embed["footer"]["text"]
    screen = handle.original
    # Another moderator's screen, opened at the same time, shows the same name.
    other = await dino.fake.slash("review", user=ADMIN)
    await reply_of(other)
    other_screen = other.original

    # A member's client sends the click anyway: refused, nothing changes, the screen stays.
    refused = await reply_of(await dino.fake.click(screen, label="Approve", user=MEMBER))
    assert is_ephemeral(refused) and "Manage Server" in refused["content"]
    assert (await dino.bot.store.names.get(GUILD_A, "firstosaurus")).status is Status.PENDING

    approved = await reply_of(await dino.fake.click(screen, label="Approve", user=ADMIN))
    assert "Approved **Firstosaurus**" in approved["content"]
    assert approved["embeds"][0]["title"] == "📝 Secondosaurus"

    await dino.restart()
    rejected = await reply_of(await dino.fake.click(screen, label="Reject", user=ADMIN))
    assert "Rejected **Secondosaurus**" in rejected["content"]
    assert rejected["embeds"][0]["title"] == "📝 Thirdosaurus"
    assert "the last one waiting" in rejected["embeds"][0]["footer"]["text"]

    # The other screen still shows the first name: rejecting it there changes nothing.
    stale = await reply_of(await dino.fake.click(other_screen, label="Reject", user=ADMIN))
    assert "**Firstosaurus** was already approved; nothing changed" in stale["content"]
    assert stale["embeds"][0]["title"] == "📝 Thirdosaurus"  # and it moves on to what still waits

    done = await reply_of(await dino.fake.click(screen, label="Approve", user=ADMIN))
    assert "Approved **Thirdosaurus**" in done["content"] and "All reviewed" in done["content"]
    assert done["embeds"] == [] and done["components"] == []

    store = dino.bot.store
    statuses = {s.name: s.status for s in await store.names.list(GUILD_A)}
    assert statuses == {"firstosaurus": Status.APPROVED, "secondosaurus": Status.REJECTED,
                        "thirdosaurus": Status.APPROVED}
    actions = [e.action for e in await store.audit.recent(GUILD_A)]
    assert actions == ["submission.approved", "submission.rejected", "submission.approved", "settings.update"]
    dino.fake.assert_clean()


async def test_review_queues_are_per_server(dino):
    await enable_review(dino, GUILD_A)
    await submit(dino, "Homeosaurus", guild=GUILD_A)
    await enable_review(dino, GUILD_B)
    await submit(dino, "Awayosaurus", guild=GUILD_B)
    handle = await dino.fake.slash("review", user=ADMIN, guild=GUILD_B)
    data = await reply_of(handle)
    embed = data["embeds"][0]
    assert embed["title"] == "📝 Awayosaurus" and "last one waiting" in embed["footer"]["text"]
    done = await reply_of(await dino.fake.click(handle.original, label="Approve", user=ADMIN))
    assert "All reviewed" in done["content"]
    assert (await dino.bot.store.names.get(GUILD_A, "homeosaurus")).status is Status.PENDING
    assert [e.action for e in await dino.bot.store.audit.recent(GUILD_A)] == ["settings.update"]
    dino.fake.assert_clean()


async def test_pending_names_stay_reviewable_after_review_is_turned_off(dino):
    await enable_review(dino)
    await submit(dino, "Leftosaurus")
    turned_off = await reply_of(await dino.fake.slash("settings", {"review": False}, user=ADMIN))
    assert "1 names from when it was on still wait" in turned_off["embeds"][0]["fields"][0]["value"]
    data = await reply_of(await dino.fake.slash("review", user=ADMIN))
    assert "Review is off now" in data["content"] and data["embeds"][0]["title"] == "📝 Leftosaurus"
    dino.fake.assert_clean()


# ---------------------------------------------------------------------- /settings


def fields(data: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in data["embeds"][0]["fields"]}


async def test_settings_show_and_update(dino):
    shown = await reply_of(await dino.fake.slash("settings", user=ADMIN))
    assert is_ephemeral(shown) and not shown.get("content")
    current = fields(shown)
    assert current["Review (`review`)"].startswith("**Off**")
    assert "disabled" not in current and current["Scheduled fine-tuning (`scheduled_training`)"].startswith("**On**")
    assert "Last changed" not in current  # nobody has changed anything yet

    handle = await dino.fake.slash("settings", {"review": True, "scheduled_training": False}, user=ADMIN)
    updated = await reply_of(handle)
    assert is_ephemeral(updated)
    assert updated["content"] == ("Updated. Review: off → **on**; Scheduled fine-tuning: on → **off**.")
    assert fields(updated)["Review (`review`)"].startswith("**On**")
    assert fields(updated)["Scheduled fine-tuning (`scheduled_training`)"].startswith("**Off**")
    assert fields(updated)["Last changed"].startswith(f"by <@{ADMIN.id}> <t:")
    settings = await dino.bot.store.settings.get(GUILD_A)
    assert (settings.review_required, settings.schedule_enabled) == (True, False)
    (entry,) = await dino.bot.store.audit.recent(GUILD_A)
    assert (entry.action, entry.actor_id) == ("settings.update", ADMIN.id)
    assert entry.details == {"review_required": {"from": False, "to": True},
                             "schedule_enabled": {"from": True, "to": False}}

    same = await reply_of(await dino.fake.slash("settings", {"review": True}, user=ADMIN))
    assert "Nothing to change" in same["content"]
    assert len(await dino.bot.store.audit.recent(GUILD_A)) == 1
    assert not (await dino.bot.store.settings.get(GUILD_B)).review_required
    dino.fake.assert_clean()


async def test_settings_refused_for_members_and_in_dms(dino):
    member = await reply_of(await dino.fake.slash("settings", {"review": True}, user=MEMBER))
    assert is_ephemeral(member) and "Nothing was changed" in member["content"]
    dm = await reply_of(await dino.fake.slash("settings", guild=None, user=ADMIN))
    assert is_ephemeral(dm) and "only works in a server" in dm["content"]
    assert not (await dino.bot.store.settings.get(GUILD_A)).review_required
    assert await dino.bot.store.audit.recent(GUILD_A) == []
    dino.fake.assert_clean()


def test_likeness_words_cover_the_ends_of_the_scale():
    from bot.ui.look import describe_likeness
    assert describe_likeness(73) == "more dinosaur-like than 73 % of real dinosaur names"
    assert describe_likeness(100) == "more dinosaur-like than every real dinosaur name"
    assert describe_likeness(0) == "less dinosaur-like than every real dinosaur name"


async def test_settings_choose_the_fine_tune_strength(dino):
    shown = fields(await reply_of(await dino.fake.slash("settings", user=ADMIN)))
    assert shown["Strength (`strength`)"].startswith("**Normal**")
    updated = await reply_of(await dino.fake.slash("settings", {"strength": "subtle"}, user=ADMIN))
    assert updated["content"] == "Updated. Strength: normal → **subtle**."
    assert fields(updated)["Strength (`strength`)"].startswith("**Subtle**")
    assert (await dino.bot.store.settings.get(GUILD_A)).strength == "subtle"
    assert (await dino.bot.store.settings.get(GUILD_B)).strength == "normal"
