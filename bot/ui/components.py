"""Message components prebuilt as Discord JSON, for replies whose controls are all dynamic items.

discord.py dispatches a :class:`discord.ui.DynamicItem` by matching the clicked custom id
against the registered templates, so a reply made only of dynamic items needs no
:class:`discord.ui.View` kept anywhere. Building one per ``/dinoname`` reply anyway (its random
id, its future, an item object per control, then serialising them) costs the event loop enough
per reply that a burst of 200 replies waits noticeably before any leaves (README). :class:`Prebuilt`
is the JSON itself, made from dict copies of prototypes that discord.py rendered once (see
:func:`prototype`), so a control looks exactly as its item class would render it.

It is passed where discord.py takes ``view=``, and provides the three methods discord.py calls
on a view when sending a message. ``is_finished()`` is True, so discord.py stores nothing; the
tests click every control of such replies, before and after a restart.
"""
from __future__ import annotations

from typing import Any

import discord

from bot.ui.look import CHOICES

JSON = dict[str, Any]
MAX_ROWS = 5
MAX_PER_ROW = 5


class Prebuilt:
    """Rows of component JSON, sendable as ``view=`` (dynamic items only)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[list[JSON]]) -> None:
        if len(rows) > MAX_ROWS or any(not 1 <= len(row) <= MAX_PER_ROW for row in rows):
            raise ValueError(f"Discord allows {MAX_ROWS} rows of 1-{MAX_PER_ROW} components, got {rows!r}")
        self._rows = [{"type": 1, "components": row} for row in rows]

    def to_components(self) -> list[JSON]:
        return self._rows

    def has_components_v2(self) -> bool:
        return False

    def is_finished(self) -> bool:
        """Nothing for discord.py to store or time out: dynamic items dispatch by custom id."""
        return True


def prototype(item: discord.ui.DynamicItem) -> JSON:
    """How discord.py renders ``item``: copy it and change the custom id (and options)."""
    return item.item.to_component_dict()  # type: ignore[attr-defined]


def name_control(names: list[str], button: JSON, button_id: str, menu: JSON) -> JSON | None:
    """The control acting on a reply's names: ``button`` with custom id ``button_id`` + the name
    for one name, ``menu`` with an option per name (up to ``CHOICES``) for several, or None for
    none. One rule for every such control, so they all offer the same names the same way."""
    if not names:
        return None
    if len(names) == 1:
        return {**button, "custom_id": f"{button_id}{names[0]}"}
    return {**menu, "options": [{"label": name.capitalize(), "value": name} for name in names[:CHOICES]]}
