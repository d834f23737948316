"""Discord's documented limits on what the bot sends: messages, embeds, components, modals, choices, commands.

Apart from the routes because these checks are the fake's main reason to exist (a reply over a
limit works against a lax fake and fails in production); each check collects every problem, so a
refusal lists all that is wrong, as Discord's "Invalid Form Body" does.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ..jsontypes import JSON
from ..messages import FLAG_COMPONENTS_V2, Upload
from .errors import EMPTY_MESSAGE, TOO_LARGE, ApiError, Problems, form_error


def _check_length(problems: Problems, path: str, value: Any, limit: int, *, required: bool = False) -> int:
    text = "" if value is None else str(value)
    if required and not text.strip():
        problems.append((path, "This field is required and may not be empty."))
    if len(text) > limit:
        problems.append((path, f"Must be {limit} or fewer in length (got {len(text)})."))
    return len(text)


def _check_components(problems: Problems, components: Sequence[JSON], v2: bool) -> None:
    if not v2 and len(components) > 5:
        problems.append(("components", f"Must be 5 or fewer in length (got {len(components)})."))

    def walk(items: Sequence[JSON], path: str) -> None:
        for index, component in enumerate(items):
            here = f"{path}.{index}"
            kind = component.get("type")
            if "custom_id" in component:
                _check_length(problems, f"{here}.custom_id", component["custom_id"], 100, required=True)
            if kind == 2:
                _check_length(problems, f"{here}.label", component.get("label"), 80)
                if component.get("style") == 5 and not component.get("url"):
                    problems.append((f"{here}.url", "Link buttons need a url."))
                elif component.get("style") not in (5, 6) and "custom_id" not in component:
                    problems.append((f"{here}.custom_id", "This field is required."))
            if kind == 1:
                children = component.get("components") or []
                if not 1 <= len(children) <= 5:
                    problems.append((f"{here}.components", f"Must be between 1 and 5 in length (got {len(children)})."))
            if kind == 3 and len(component.get("options") or []) > 25:
                problems.append((f"{here}.options", "Must be 25 or fewer in length."))
            walk(component.get("components") or [], f"{here}.components")

    walk(components, "components")


def _check_embeds(problems: Problems, embeds: Sequence[JSON]) -> None:
    if len(embeds) > 10:
        problems.append(("embeds", "Must be 10 or fewer in length."))
    total = 0
    for i, embed in enumerate(embeds):
        here = f"embeds.{i}"
        total += _check_length(problems, f"{here}.title", embed.get("title"), 256)
        total += _check_length(problems, f"{here}.description", embed.get("description"), 4096)
        total += _check_length(problems, f"{here}.footer.text", (embed.get("footer") or {}).get("text"), 2048)
        total += _check_length(problems, f"{here}.author.name", (embed.get("author") or {}).get("name"), 256)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append((f"{here}.fields", "Must be 25 or fewer in length."))
        for j, embed_field in enumerate(fields):
            total += _check_length(problems, f"{here}.fields.{j}.name", embed_field.get("name"), 256, required=True)
            total += _check_length(problems, f"{here}.fields.{j}.value", embed_field.get("value"), 1024, required=True)
    if total > 6000:
        problems.append(("embeds", f"Embed size exceeds maximum size of 6000 (got {total})."))


def validate_message(payload: Optional[JSON], uploads: Sequence[Upload], *, creating: bool, size_limit: int) -> None:
    """Refuse a message body the way Discord would (limits, empty messages, oversized files)."""
    payload = payload or {}
    problems: Problems = []
    flags = int(payload.get("flags") or 0)
    v2 = bool(flags & FLAG_COMPONENTS_V2)

    _check_length(problems, "content", payload.get("content"), 2000)
    embeds = payload.get("embeds") or []
    _check_embeds(problems, embeds)
    if v2 and (payload.get("content") or embeds):
        problems.append(("content", "Messages with the IS_COMPONENTS_V2 flag cannot have content or embeds."))
    _check_components(problems, payload.get("components") or [], v2)
    if len(payload.get("attachments") or uploads) > 10:
        problems.append(("attachments", "Must be 10 or fewer in length."))
    if problems:
        raise form_error(problems)
    for upload in uploads:
        if len(upload.data) > size_limit:
            raise ApiError(413, TOO_LARGE, "Request entity too large")
    if creating and not (
        payload.get("content") or embeds or payload.get("components") or uploads or payload.get("poll")
    ):
        raise ApiError(400, EMPTY_MESSAGE, "Cannot send an empty message")


def validate_modal(data: JSON) -> None:
    problems: Problems = []
    _check_length(problems, "data.title", data.get("title"), 45, required=True)
    _check_length(problems, "data.custom_id", data.get("custom_id"), 100, required=True)
    if not 1 <= len(data.get("components") or []) <= 5:
        problems.append(("data.components", "Must be between 1 and 5 in length."))
    if problems:
        raise form_error(problems)


def validate_choices(data: JSON) -> None:
    problems: Problems = []
    choices = data.get("choices") or []
    if len(choices) > 25:
        problems.append(("data.choices", "Must be 25 or fewer in length."))
    for i, choice in enumerate(choices):
        _check_length(problems, f"data.choices.{i}.name", choice.get("name"), 100, required=True)
        if isinstance(choice.get("value"), str):
            _check_length(problems, f"data.choices.{i}.value", choice.get("value"), 100)
    if problems:
        raise form_error(problems)


def validate_command(command: JSON, index: int) -> Problems:
    """The checks on a command definition that catch real mistakes (discord.py checks most others)."""
    problems: Problems = []
    name = command.get("name") or ""
    if not 1 <= len(name) <= 32:
        problems.append((f"{index}.name", "Must be between 1 and 32 in length."))
    if command.get("type", 1) == 1:
        if name != name.lower():
            problems.append((f"{index}.name", "Slash command names must be lower case."))
        _check_length(problems, f"{index}.description", command.get("description"), 100, required=True)
    if len(command.get("options") or []) > 25:
        problems.append((f"{index}.options", "Must be 25 or fewer in length."))
    return problems
