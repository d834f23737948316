"""/retrain through the real discord.py client and the fake Discord: live progress, joining a
running job, the Cancel button, refusals, and a fine-tune that is not promoted.

Fine-tunes here are real (tiny networks, a few epochs). Tests that need a job to stay running
long enough to interact with it use :func:`long_running`: many epochs and no early stopping,
always ending in a cancel, so no test waits for a long fine-tune to finish.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace

import pytest

from bot.services.records import LiveReply
from bot.services.training.jobs import JobStatus, NotEnoughNames
from tests.support.fake_discord import InteractionHandle
from tests.support.harness import ADMIN, GUILD_A, GUILD_B, MEMBER, long_running, make_config, running, with_epochs
from tests.support.wording import assert_sentence

EPHEMERAL = 64
NAMES = ("glimmerosaurus", "quillodon", "brontofex", "zephyraptor", "mossasaurus", "velvetops",
         "crumbleodon", "thistlerex", "pebblonyx", "rumblesaurus")


async def add_names(bot, guild_id: int = GUILD_A, count: int = len(NAMES)) -> None:
    for user, name in enumerate(NAMES[:count]):  # one member each: no daily limit in the way
        await bot.store.names.submit(guild_id, 20_000 + user, name)


def embed(body: dict) -> dict:
    return body["embeds"][0]


def fields(body: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed(body).get("fields", [])}


def percent(body: dict) -> int | None:
    found = re.search(r"\*\*(\d+) %\*\*", embed(body).get("description", ""))
    return int(found[1]) if found else None


def is_summary(body: dict) -> bool:
    return bool(body.get("embeds")) and percent(body) is None and "Fine-tuning" not in embed(body)["title"]


@pytest.fixture
async def slow_dino(fake, tmp_path):
    """A bot whose fine-tunes run until cancelled, editing replies ten times a second (not once)."""
    async with running(fake, long_running(make_config(tmp_path / "data"))) as harness:
        harness.bot.get_cog("Retrain").edit_interval = 0.1
        yield harness


async def wait_running(handle) -> list[dict]:
    """Wait until the reply shows a running job with an epoch done (a Cancel button on it)."""
    return await handle.wait_for(
        lambda h: [e for e in h.edits if e.get("embeds") and "/" in fields(e).get("Pass over the names", "")],
        timeout=10, what="a progress edit")


async def start_running(dino) -> InteractionHandle:
    """Give the server its names, run /retrain as the admin, and wait until the reply shows the
    job running (an epoch done, the Cancel button on it): where the cancel tests begin."""
    await add_names(dino.bot)
    handle = await dino.fake.slash("retrain", user=ADMIN)
    await handle.response()
    await wait_running(handle)
    return handle


async def wait_summary(handle, timeout: float = 5) -> dict:
    """Wait for the reply's final edit (no progress on it any more) and return it."""
    await handle.wait_for(lambda h: h.edits and is_summary(h.edits[-1]), timeout=timeout, what="the summary")
    return handle.edits[-1]


# ------------------------------------------------------------------------------------- progress


@pytest.fixture
async def medium_dino(fake, tmp_path):
    """Fine-tunes of about a second: long enough to show progress, short enough to wait for."""
    async with running(fake, with_epochs(make_config(tmp_path / "data"), 10)) as harness:
        yield harness


async def test_progress_edits_arrive_in_order_and_end_with_the_summary(medium_dino):
    dino = medium_dino
    dino.bot.get_cog("Retrain").edit_interval = 0.02  # many edits, to check their order
    await add_names(dino.bot)
    handle = await dino.fake.slash("retrain", user=ADMIN)
    assert (await handle.response())["type"] == 5  # deferred: "DinoBot is thinking…"
    summary = await wait_summary(handle, timeout=15)
    edits = handle.edits
    progress = [percent(e) for e in edits[:-1] if percent(e) is not None]
    assert len(progress) >= 3 and progress == sorted(progress), progress
    assert all(e["components"] for e in edits[:-1])  # the Cancel button while it runs
    assert embed(summary)["title"] == "✅ New model promoted: v1" and summary["components"] == []
    info = fields(summary)
    assert info["Names used"] == f"{len(NAMES)} ({len(NAMES)} new)"
    assert re.fullmatch(r"\d\.\d{3} → \d\.\d{3} \(lower is better\)", info["Score on names it never saw"])
    assert_sentence(embed(summary)["description"])
    assert "it answers in this server from now on" in embed(summary)["description"]
    assert info["Version"] == "v1 (now serving this server)"
    assert len(info["Names from the new model"].split(", ")) >= 1
    shown = [fields(e) for e in edits if percent(e) is not None]
    assert all("Pass over the names" in f for f in shown) and any("Score (lower is better)" in f for f in shown)
    assert embed(summary)["footer"]["text"].startswith("Took ")
    dino.fake.assert_clean()


async def test_edits_are_throttled_but_the_final_one_is_never_dropped(slow_dino):
    """No clock in the assertions: with an hour between edits, many epochs pass after the first
    edit without another, and the summary still comes as soon as the job ends."""
    fake, bot = slow_dino.fake, slow_dino.bot
    bot.get_cog("Retrain").edit_interval = 3600.0
    await add_names(bot)
    handle = await fake.slash("retrain", user=ADMIN)
    await handle.response()
    (first,) = await handle.wait_for_edits(1, timeout=10)
    job = bot.trainer.job(GUILD_A)
    await fake.wait_until(lambda: job.snapshot.progress and job.snapshot.progress.epoch >= 5, timeout=30,
                          what="five epochs of training")
    assert handle.edits == [first], "no edit between the first and the final one"
    job.cancel("test over")
    await wait_summary(handle, timeout=10)
    assert len(handle.edits) == 2 and embed(handle.edits[1])["title"] == "⏹️ Fine-tune cancelled"
    fake.assert_clean()


async def test_a_second_retrain_shows_the_running_job(slow_dino):
    fake, bot = slow_dino.fake, slow_dino.bot
    first = await start_running(slow_dino)
    job = bot.trainer.job(GUILD_A)
    assert job is not None and job.status is JobStatus.RUNNING
    second = await fake.slash("retrain", user=ADMIN)
    await second.response()
    shown = (await wait_running(second))[0]
    assert "already under way" in embed(shown)["description"] and f"<@{ADMIN.id}>" in embed(shown)["description"]
    assert bot.trainer.job(GUILD_A) is job and bot.trainer.queued_guilds() == [GUILD_A]
    assert "Started by" in embed(first.edits[0])["description"]
    job.cancel("test over")
    for handle in (first, second):  # both replies follow the same job to its end
        assert embed(await wait_summary(handle))["title"] == "⏹️ Fine-tune cancelled"
    fake.assert_clean()


async def test_another_server_queues_and_can_cancel_before_it_starts(slow_dino):
    fake, bot = slow_dino.fake, slow_dino.bot
    await add_names(bot, GUILD_A)
    await add_names(bot, GUILD_B)
    first = await fake.slash("retrain", guild=GUILD_A, user=ADMIN)
    await first.response()
    await wait_running(first)
    queued = await fake.slash("retrain", guild=GUILD_B, user=ADMIN)
    await queued.response()
    (edit,) = await queued.wait_for_edits(1)
    assert "Waiting for 1 other fine-tune to finish." in embed(edit)["description"]
    assert bot.trainer.queued_guilds() == [GUILD_A, GUILD_B]
    click = await fake.click(queued.original, label="Cancel", user=ADMIN)
    assert "Stopping" in (await click.response())["data"]["content"]
    assert "before it started" in embed(await wait_summary(queued))["description"]
    assert bot.trainer.queued_guilds() == [GUILD_A]  # the other server's job was not touched
    bot.trainer.job(GUILD_A).cancel("test over")
    fake.assert_clean()


# ------------------------------------------------------------------------------------- cancel


async def test_the_cancel_button_stops_the_fine_tune_and_keeps_the_model(slow_dino):
    fake, bot = slow_dino.fake, slow_dino.bot
    handle = await start_running(slow_dino)
    job = bot.trainer.job(GUILD_A)
    click = await fake.click(handle.original, label="Cancel", user=ADMIN)
    answer = await click.response()
    assert answer["data"]["flags"] & EPHEMERAL and "Stopping" in answer["data"]["content"]
    outcome = await job.wait()
    assert job.status is JobStatus.CANCELLED and "cancelled by an admin" in outcome.reason
    assert embed(await wait_summary(handle))["title"] == "⏹️ Fine-tune cancelled"
    assert handle.original.find_component(label="Cancel") is None
    assert (await bot.registry.get(GUILD_A)).version is None  # still the base model
    audit = [entry.action for entry in await bot.store.audit.recent(GUILD_A)]
    assert "finetune.request" in audit and "finetune.cancel" in audit
    fake.assert_clean()


async def test_a_member_cannot_cancel(slow_dino):
    fake, bot = slow_dino.fake, slow_dino.bot
    handle = await start_running(slow_dino)
    click = await fake.click(handle.original, label="Cancel", user=MEMBER)
    answer = await click.response()
    assert answer["data"]["flags"] & EPHEMERAL and "Manage Server" in answer["data"]["content"]
    job = bot.trainer.job(GUILD_A)
    assert job is not None and job.status is JobStatus.RUNNING
    job.cancel("test over")
    await job.wait()


async def test_a_restart_ends_the_reply_with_the_cancellation(slow_dino):
    handle = await start_running(slow_dino)
    await slow_dino.restart()  # shutting down cancels the job, and the reply says so before the bot goes
    assert embed(handle.edits[-1])["title"] == "⏹️ Fine-tune cancelled"
    assert "shutting down" in embed(handle.edits[-1])["description"]
    assert handle.original.find_component(label="Cancel") is None
    assert slow_dino.bot.trainer.job(GUILD_A) is None
    slow_dino.fake.assert_clean()


# ------------------------------------------------------------------------------------- refusals


async def test_a_member_is_refused_and_nothing_runs(dino):
    await add_names(dino.bot)
    handle = await dino.fake.slash("retrain", user=MEMBER)
    reply = await handle.response()
    assert reply["type"] == 4 and reply["data"]["flags"] & EPHEMERAL
    assert "Manage Server" in reply["data"]["content"]
    assert dino.bot.trainer.job(GUILD_A) is None
    assert await dino.bot.store.versions.list(GUILD_A) == []
    assert [e.action for e in await dino.bot.store.audit.recent(GUILD_A)] == []
    dino.fake.assert_clean()


async def test_retrain_is_hidden_from_members_by_default(dino):
    command, _ = dino.fake.find_command("retrain", GUILD_A)
    assert command is not None and int(command["default_member_permissions"]) == 1 << 5  # Manage Server


async def test_not_enough_names_says_privately_how_many_are_needed(dino):
    await add_names(dino.bot, count=3)
    handle = await dino.fake.slash("retrain", user=ADMIN)
    reply = await handle.response()
    assert reply["type"] == 4 and reply["data"]["flags"] & EPHEMERAL  # not posted for the whole channel
    text = reply["data"]["content"]
    assert "at least **5**" in text and "has **3**" in text and "2 more" in text and "/submit" in text
    assert_sentence(text)
    assert handle.edits == [] and dino.bot.trainer.job(GUILD_A) is None
    dino.fake.assert_clean()


async def test_only_this_servers_names_count(dino):
    await add_names(dino.bot, guild_id=GUILD_B)
    handle = await dino.fake.slash("retrain", user=ADMIN, guild=GUILD_A)
    reply = await handle.response()
    assert reply["data"]["flags"] & EPHEMERAL and "has **0**" in reply["data"]["content"]


# ------------------------------------------------------------------------------------- not promoted


async def test_a_worse_result_is_reported_as_not_promoted(fake, tmp_path):
    config = make_config(tmp_path / "data")
    strict = replace(config, training=replace(config.training, tolerance=-10.0))  # must improve by 10 nats
    async with running(fake, strict) as harness:
        await add_names(harness.bot)
        handle = await fake.slash("retrain", user=ADMIN)
        await handle.response()
        summary = await wait_summary(handle, timeout=15)
        assert embed(summary)["title"] == "↩️ Fine-tune not promoted: the model is unchanged"
        assert "worse than the current model" in embed(summary)["description"]
        assert_sentence(embed(summary)["description"])
        assert fields(summary)["Version"] == "v1 (discarded)"
        assert "Names from the new model" not in fields(summary)
        assert (await harness.bot.registry.get(GUILD_A)).version is None
        fake.assert_clean()


@pytest.mark.fake_refusals  # the edit with an expired token is refused on purpose
async def test_a_failed_edit_stops_the_watcher_not_the_job(slow_dino, caplog):
    fake, bot = slow_dino.fake, slow_dino.bot
    handle = await start_running(slow_dino)
    message = handle.original
    fake._interactions_by_token.pop(handle.token)  # as if the 15-minute token had expired
    job = bot.trainer.job(GUILD_A)
    cog = bot.get_cog("Retrain")
    await fake.wait_until(lambda: not cog._watchers, timeout=5, what="the watcher to give up")
    assert job.status is JobStatus.RUNNING  # training goes on without live progress
    assert "could not edit the /retrain reply" in caplog.text
    assert [r.status for r in fake.api_errors] == [404]

    # The reply is stuck showing progress with its Cancel button, which still works...
    answer = await (await fake.click(message, label="Cancel", user=ADMIN)).response()
    assert "Stopping" in answer["data"]["content"]
    assert (await job.wait()).reason == "cancelled by an admin"
    # ...and after a restart (a crash would leave such a reply too) it says nothing is running.
    await slow_dino.restart()
    answer = await (await fake.click(message, label="Cancel", user=ADMIN)).response()
    assert answer["data"]["flags"] & EPHEMERAL and "no fine-tune running" in answer["data"]["content"]
    fake.assert_clean(allow_api_errors=True)


# ------------------------------------------------------------------------------------- failures


class Boom(RuntimeError):
    """A bug inside a fine-tune, with text no member should ever read."""


async def retrain_failing(dino, error: Exception) -> InteractionHandle:
    """Run /retrain with the training thread's step raising ``error`` (as the service tests do)
    and return the reply once its private note has arrived."""
    await add_names(dino.bot)

    def fail(plan, progress, should_stop):
        raise error
    dino.bot.trainer._train = fail
    handle = await dino.fake.slash("retrain", user=ADMIN)
    await handle.response()
    await handle.wait_for(lambda h: h.followups, timeout=15, what="the private note")
    return handle


@pytest.mark.parametrize("error, expected", [
    (Boom("secret internal detail: /srv/dinobot/var is broken"), "error id `"),
    (NotEnoughNames(5, 2), "Fine-tuning needs at least 5 approved names"),  # deliberate: its text is shown
])
async def test_a_failed_fine_tune_is_reported_privately_without_raw_text(dino, error, expected):
    handle = await retrain_failing(dino, error)
    (note,) = handle.followups
    assert note.ephemeral and expected in note.content and "secret" not in note.content
    assert "keeps its current model" in note.content
    assert_sentence(note.content)
    assert handle.original.deleted, "the public progress reply is gone"
    assert not [e for e in handle.edits if "secret" in str(e)]
    assert (await dino.bot.registry.get(GUILD_A)).version is None
    assert await dino.bot.store.live_replies.all() == []
    dino.fake.assert_clean()


async def test_settings_say_why_the_last_fine_tune_failed(dino):
    """Scheduled fine-tunes have no reply to tell: /settings keeps the last failure for the admin."""
    await retrain_failing(dino, Boom("secret internal detail: /srv/dinobot/var is broken"))
    settings = await dino.fake.slash("settings", user=ADMIN)
    shown = fields((await settings.response())["data"])["Scheduled fine-tuning (`scheduled_training`)"]
    assert "⚠️ The last fine-tune failed because of an unexpected error (error id `" in shown
    assert "secret" not in shown and "Boom" not in shown
    dino.fake.assert_clean()


# ------------------------------------------------------------------------------------- after a crash


async def test_a_reply_left_live_by_a_crash_is_told_the_fine_tune_was_interrupted(slow_dino):
    """A crash is played by stopping the watcher without its final edit (as kill -9 would leave
    it): after the restart the reply says what happened, and the Cancel button is gone."""
    fake, bot = slow_dino.fake, slow_dino.bot
    handle = await start_running(slow_dino)
    (remembered,) = await bot.store.live_replies.all()
    assert (remembered.interaction_id, remembered.message_id) == (handle.id, handle.original.id)
    cog = bot.get_cog("Retrain")
    for watcher in list(cog._watchers):  # the process "dies": no more edits from this bot
        watcher.cancel()
    await fake.wait_until(lambda: not cog._watchers, timeout=5, what="the watchers to stop")
    assert handle.original.find_component(label="Cancel") is not None  # stuck, as after a crash
    await slow_dino.restart()
    final = handle.edits[-1]
    assert embed(final)["title"] == "⚠️ Fine-tune interrupted" and final["components"] == []
    assert "/retrain" in embed(final)["description"] and "keeps its current model" in embed(final)["description"]
    assert_sentence(embed(final)["description"])
    assert handle.original.find_component(label="Cancel") is None
    assert await slow_dino.bot.store.live_replies.all() == []
    fake.assert_clean()


async def test_an_interrupted_reply_whose_token_expired_is_left_alone(dino):
    handle = await dino.fake.slash("dinoinfo", user=ADMIN)  # any reply the bot made
    await handle.response()
    old = LiveReply(handle.id, GUILD_A, dino.fake.application_id, handle.token, handle.original.id,
                    created_at=time.time() - 16 * 60)  # Discord refuses its token after 15 minutes
    await dino.bot.store.live_replies.remember(old)
    edits_before = len(handle.edits)
    await dino.restart()
    assert len(handle.edits) == edits_before  # no edit tried with a dead token
    assert await dino.bot.store.live_replies.all() == []
    dino.fake.assert_clean()
