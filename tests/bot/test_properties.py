"""Property: whatever members type, the bot answers sensibly, never with a traceback, and never
stores a name that is not 3–32 letters a–z.

Hypothesis drives every option of every command the bot synced (read from the fake Discord, so
a new command or option is covered without touching this file) with arbitrary text, integers
and floats, plus the bot's buttons with arbitrary ids, as a member or an admin, in a server or
in DMs. Discord itself enforces string lengths and choices, so those stay within the schema;
numbers go anywhere, since a button made by an older version can carry any.
"""
from __future__ import annotations

import re
import sqlite3
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.fake_discord.interactions import (
    BOOLEAN,
    DEFERRED_CHANNEL_MESSAGE,
    INTEGER,
    NUMBER,
    STRING,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
)
from tests.support.harness import ADMIN, GUILD_A, GUILD_B, MEMBER

TRACEBACK = re.compile(r"Traceback|File \"|line \d+, in |\b[A-Z]\w*(Error|Exception)\b|<[\w.]+ object at 0x")
APOLOGY = "something went wrong on our side"
VALID_NAME = re.compile(r"[a-z]{3,32}")

TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
NAMEISH = st.from_regex(r"\s?[A-Za-z]{1,40}\s?", fullmatch=True)  # reaches the paths that store names
BUTTON_IDS = st.one_of(
    st.builds("dino:more:{}:{}:{}{}".format, st.from_regex(r"[a-z]{0,31}", fullmatch=True),
              st.integers(0, 99), st.integers(0, 999), st.sampled_from(["", ":p"])),
    st.builds("dino:{}:{}".format, st.sampled_from(["keep", "meaning"]), st.from_regex(r"[a-z]{1,32}", fullmatch=True)),
    st.builds("dino:review:{}:{}".format, st.sampled_from(["approve", "reject"]), st.integers(0, 10**19 - 1)),
    st.builds("dino:retrain:cancel:{}".format, st.integers(0, 10**20)),
)


def button_message(custom_id: str) -> dict:
    """A message with one button, as an older DinoBot might have left in a channel."""
    button = {"type": 2, "style": 2, "label": "Old button", "custom_id": custom_id}
    return {"content": "A message from an older DinoBot", "components": [{"type": 1, "components": [button]}]}


def leaves(commands: list[dict]) -> list[tuple[str, list[dict]]]:
    """(full name as typed, options) of every runnable (sub)command."""
    found = []

    def walk(prefix: str, options: list[dict]) -> None:
        nested = [o for o in options if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        if not nested:
            found.append((prefix, options))
        for option in nested:
            walk(f"{prefix} {option['name']}", option.get("options") or [])

    for command in commands:
        walk(command["name"], command.get("options") or [])
    return sorted(found, key=lambda leaf: leaf[0])


def value_strategy(option: dict) -> st.SearchStrategy:
    kind = option["type"]
    if option.get("choices"):
        return st.sampled_from([choice["value"] for choice in option["choices"]])
    if kind == STRING:
        low, high = option.get("min_length", 0), option.get("max_length", 100)
        return st.one_of(TEXT, NAMEISH).filter(lambda text: low <= len(text) <= high)
    if kind == INTEGER:
        return st.one_of(st.integers(option.get("min_value", -(2**53)), option.get("max_value", 2**53)),
                         st.integers(-(2**53), 2**53))
    if kind == NUMBER:
        return st.floats(allow_nan=False, allow_infinity=False)  # JSON has neither
    if kind == BOOLEAN:
        return st.booleans()
    raise AssertionError(f"no strategy for option type {kind} ({option['name']}): add one")


@st.composite
def slash_call(draw, commands: list[tuple[str, list[dict]]]) -> tuple[str, dict[str, Any]]:
    name, options = draw(st.sampled_from(commands))
    values = {}
    for option in options:
        if option.get("required") or draw(st.booleans()):
            values[option["name"]] = draw(value_strategy(option))
    return name, values


def shown_texts(handle) -> list[str]:
    """Everything the member sees from one interaction: the reply, its edits, the followups."""
    bodies = [handle.data, *handle.edits, *(m.to_payload() for m in handle.followups)]
    texts = []
    for body in bodies:
        texts.append(str(body.get("content") or ""))
        for embed in body.get("embeds") or []:
            texts += [embed.get("title", ""), embed.get("description", ""), (embed.get("footer") or {}).get("text", "")]
            texts += [f"{field['name']} {field['value']}" for field in embed.get("fields", [])]
    return [text for text in texts if text]


def check_answer(handle) -> None:
    for text in shown_texts(handle):
        assert not TRACEBACK.search(text), f"a member was shown internals: {text!r}"
        assert APOLOGY not in text, f"an input reached an unexpected error: {text!r}"


def stored_names(dino) -> list[str]:
    with sqlite3.connect(dino.bot.config.db_path) as db:
        return [row[0] for row in db.execute("SELECT name FROM submissions")]


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_any_input_gets_a_plain_answer_and_only_valid_names_are_stored(dino, data):
    fake = dino.fake
    commands = leaves(fake.commands())
    assert {name for name, _ in commands} >= {"dinoname", "submit", "names list", "names remove", "retrain"}
    handles = []
    for _ in range(data.draw(st.integers(1, 4), label="calls")):
        user = data.draw(st.sampled_from([MEMBER, ADMIN]), label="user")
        guild = data.draw(st.sampled_from([GUILD_A, GUILD_B, None]), label="guild")
        if data.draw(st.booleans(), label="press a button"):
            custom_id = data.draw(BUTTON_IDS, label="button")
            message = fake.add_bot_message(button_message(custom_id), guild=guild, user=user)
            handle = await fake.click(message, custom_id, user=user)
        else:
            name, options = data.draw(slash_call(commands), label="command")
            handle = await fake.slash(name, options, user=user, guild=guild)
        await handle.response(timeout=10)
        if handle.response_type == DEFERRED_CHANNEL_MESSAGE:  # the answer comes as an edit or a followup
            await handle.wait_for(lambda h: h.edits or h.followups, timeout=10, what="the deferred answer")
        handles.append(handle)
        event(f"button {custom_id.split(':')[1]}" if handle.type == 3 else f"/{name}")
    for handle in handles:
        check_answer(handle)
    invalid = [name for name in stored_names(dino) if not VALID_NAME.fullmatch(name)]
    assert not invalid, f"invalid names were stored: {invalid}"
    fake.assert_clean()
