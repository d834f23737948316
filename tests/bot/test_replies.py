"""Which errors members read as text, and how it reads: deliberate ones as a sentence, bugs never.

``friendly_message`` decides for every command and button (all of them report through
``report_error``); a bug gets ``None`` here and so the apology with an error id.
"""
from __future__ import annotations

import pytest
from discord import app_commands

from bot.errors import DailyLimitReached, DuplicateName, KnownDinosaur, NotFound, SchemaTooNew, StorageError
from bot.services.training.jobs import NotEnoughNames
from bot.ui.replies import NotAdmin, apology, friendly_message
from model import InvalidName, normalize_name
from tests.support.harness import MEMBER
from tests.support.wording import assert_sentence

EPHEMERAL = 64


def invalid(text: str) -> InvalidName:
    with pytest.raises(InvalidName) as caught:
        normalize_name(text)
    return caught.value


@pytest.mark.parametrize("error", [
    DuplicateName("raptorix"), KnownDinosaur("tyrannosaurus"), DailyLimitReached(20, 7200.0, 0.0),
    NotFound("The name 'zzz'"), NotEnoughNames(20, 3), invalid("t rex"), invalid("a" * 40), invalid("ab"),
    invalid("ty7"), NotAdmin(), app_commands.NoPrivateMessage(),
    app_commands.CommandOnCooldown(app_commands.Cooldown(1, 30.0), 12.3),
])
def test_deliberate_errors_read_as_sentences(error):
    text = friendly_message(error)
    assert text is not None
    assert_sentence(text)


@pytest.mark.parametrize("error", [
    ValueError("count must be 1–10, not 50"), KeyError("guild"), RuntimeError("boom"),
    StorageError("the database is closed"), SchemaTooNew("/srv/db", 9, 3), ZeroDivisionError(),
])
def test_anything_else_is_a_bug_whose_text_members_never_read(error):
    assert friendly_message(error) is None
    wrapped = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    wrapped.__cause__ = error
    assert friendly_message(wrapped) is None


def test_the_apology_carries_the_id_and_reads_as_a_sentence():
    text = apology("1a2b3c4d")
    assert "`1a2b3c4d`" in text
    assert_sentence(text)


async def test_a_bug_in_a_command_shows_the_apology_with_an_id_not_its_text(dino, caplog):
    async def broken(*args, **kwargs):
        raise ValueError("internal: temperature table index 17 out of range")
    dino.bot.generator.generate = broken  # a bug behind /dinoname
    reply = await (await dino.fake.slash("dinoname", user=MEMBER)).response()
    text = reply["data"]["content"]
    assert reply["data"]["flags"] & EPHEMERAL and "error id `" in text and "internal" not in text
    error_id = text.split("`")[1]
    assert f"error {error_id} in dinoname" in caplog.text and "temperature table index 17" in caplog.text


async def test_a_command_discord_still_shows_but_the_bot_no_longer_has_is_explained_not_apologised(dino, caplog):
    # Discord keeps showing a removed or renamed command until its command list catches up.
    reply = await (await dino.fake.slash("dinofact", user=MEMBER)).response()
    text = reply["data"]["content"]
    assert reply["data"]["flags"] & EPHEMERAL and "error id" not in text and "try again" in text
    assert_sentence(text)
    assert "ERROR" not in caplog.text
