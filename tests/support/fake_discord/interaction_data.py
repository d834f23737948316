"""The ``data`` of injected interactions, shaped as Discord sends them for what a user did.

Pure functions from "the user typed /names list count:5", "clicked the button labelled More" or
"filled in the modal" to the JSON discord.py parses: apart from the fake's state so that the rules
(subcommand nesting, option types from the synced schema, which components a user can click) can
be read and changed in one place.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence

from .interactions import BOOLEAN, INTEGER, NUMBER, STRING, SUB_COMMAND, SUB_COMMAND_GROUP
from .jsontypes import JSON
from .messages import FakeMessage

# -- payload builders -------------------------------------------------------------------------


def infer_option_type(value: Any) -> int:
    """The option type Discord would use for a Python value (when no synced schema says otherwise)."""
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    return STRING


def _schema_options(definition: Optional[JSON], path: Sequence[str]) -> Optional[List[JSON]]:
    """The option schema of the (sub)command at ``path`` inside a synced command definition."""
    if definition is None:
        return None
    options: List[JSON] = definition.get("options") or []
    for name in path:
        node = next(
            (o for o in options if o.get("name") == name and o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)), None
        )
        if node is None:
            return None
        options = node.get("options") or []
    return options


def build_command_data(
    command: str,
    options: Optional[Mapping[str, Any]],
    *,
    definition: Optional[JSON],
    command_id: int,
    command_guild_id: Optional[int],
    focused: Optional[str] = None,
    resolved: Optional[JSON] = None,
) -> JSON:
    """``data`` of an application command interaction.

    ``command`` is the full name as typed, e.g. ``"names list"`` or ``"names admin purge"``: the
    leading words become nested SUB_COMMAND_GROUP / SUB_COMMAND options like Discord sends them.
    Option types come from the synced ``definition`` when there is one (so ``count: 5`` is an
    INTEGER because the bot declared it so), otherwise from the Python value.
    """
    name, *path = command.split()
    schema = _schema_options(definition, path) or []
    leaf: List[JSON] = []
    for option_name, value in (options or {}).items():
        declared = next((o for o in schema if o.get("name") == option_name), None)
        option: JSON = {
            "name": option_name,
            "type": declared["type"] if declared else infer_option_type(value),
            "value": value,
        }
        if focused == option_name:
            option["focused"] = True
        leaf.append(option)

    nested = leaf
    for depth in range(len(path) - 1, -1, -1):
        kind = SUB_COMMAND if depth == len(path) - 1 else SUB_COMMAND_GROUP
        nested = [{"name": path[depth], "type": kind, "options": nested}]

    data: JSON = {"id": str(command_id), "name": name, "type": 1, "options": nested}
    if command_guild_id is not None:
        data["guild_id"] = str(command_guild_id)
    if resolved:
        data["resolved"] = resolved
    return data


def build_modal_components(modal: JSON, values: Mapping[str, Any]) -> List[JSON]:
    """The ``components`` of a MODAL_SUBMIT, mirroring the modal's layout with the user's input.

    Text inputs get ``value`` (a string), selects get ``values`` (a list); both action-row and
    label-wrapped layouts are supported, because discord.py accepts both.
    """

    def convert(component: JSON) -> Optional[JSON]:
        kind = component.get("type")
        if kind == 1:
            children = [c for c in (convert(child) for child in component.get("components", [])) if c]
            return {"type": 1, "components": children}
        if kind == 18:
            child = convert(component.get("component") or {})
            return {"type": 18, "component": child} if child else None
        custom_id = component.get("custom_id")
        if custom_id is None:
            return None
        if kind == 4:
            return {"type": 4, "custom_id": custom_id, "value": str(values.get(custom_id, ""))}
        if kind in (3, 5, 6, 7, 8):
            chosen = values.get(custom_id, [])
            return {"type": kind, "custom_id": custom_id, "values": list(chosen)}
        return None

    return [c for c in (convert(component) for component in modal.get("components", [])) if c]


def build_click_data(
    message: FakeMessage,
    custom_id: Optional[str],
    *,
    label: Optional[str],
    values: Sequence[str],
    resolved: Optional[JSON],
    component_type: Optional[int],
) -> JSON:
    """``data`` of a MESSAGE_COMPONENT interaction: a click on (or a pick in) ``message``'s component.

    The component is found by ``custom_id`` or by (part of) its ``label``; a missing or disabled
    one raises, since no user could click it, unless both ``custom_id`` and ``component_type``
    are given (a stale client clicking what the message no longer shows).
    """
    component = message.find_component(custom_id, label=label)
    if component is None:
        if custom_id is None or component_type is None:
            raise LookupError(
                f"no component {custom_id or label!r} on message {message.id}; it has {message.custom_ids()}"
            )
    else:
        if component.get("disabled"):
            raise ValueError(f"component {component['custom_id']!r} is disabled; a user cannot click it")
        custom_id, component_type = component["custom_id"], component["type"]
    data: JSON = {"custom_id": custom_id, "component_type": component_type}
    if component_type != 2:
        data["values"] = list(values)
    if resolved is not None:
        data["resolved"] = resolved
    return data
