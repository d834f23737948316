"""Interactions: building INTERACTION_CREATE payloads and following what the bot did with each.

An :class:`InteractionHandle` is what a test holds after injecting a slash command, a button
click or a modal submission. It collects, in order, every request the bot made with that
interaction's id or token (the callback, edits of ``@original``, followups), so a test reads
the conversation the way a Discord user would see it unfold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence

from .models import JSON, FakeGuild, FakeMessage, FakeUser, RecordedRequest

if TYPE_CHECKING:
    from .gateway import SentEvent
    from .server import FakeDiscord

# Interaction types.
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Interaction callback (response) types.
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

#: Which callback types Discord accepts for which interaction type.
ALLOWED_CALLBACKS: Dict[int, frozenset] = {
    PING: frozenset({PONG}),
    APPLICATION_COMMAND: frozenset({CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL}),
    MESSAGE_COMPONENT: frozenset(
        {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE, MODAL}
    ),
    AUTOCOMPLETE: frozenset({AUTOCOMPLETE_RESULT}),
    MODAL_SUBMIT: frozenset({CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE}),
}

# Application command option types.
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
NUMBER = 10


class LateInteraction(AssertionError):
    """The bot answered after Discord's deadline (3 s), so real Discord would have refused it."""


@dataclass
class InteractionHandle:
    """One injected interaction and everything the bot did with it."""

    fake: "FakeDiscord" = field(repr=False)
    id: int
    token: str
    type: int
    #: The INTERACTION_CREATE ``d`` payload as sent to the bot.
    payload: JSON = field(repr=False)
    event: Optional["SentEvent"] = field(default=None, repr=False)
    #: The callback body (``{"type": 4, "data": {...}}``) once the bot answered.
    callback: Optional[JSON] = None
    #: ``time.perf_counter()`` when the callback request arrived.
    callback_at: Optional[float] = None
    #: True when the callback came after the deadline and was refused like Discord does.
    late: bool = False
    #: The message ``@original`` refers to: the reply (types 4/5), or the clicked message (6/7).
    original: Optional[FakeMessage] = None
    followups: List[FakeMessage] = field(default_factory=list)
    #: Every request made with this interaction's id or token, in arrival order.
    requests: List[RecordedRequest] = field(default_factory=list, repr=False)
    #: Who triggered it, and where (``guild`` is ``None`` in DMs).
    user: Optional[FakeUser] = None
    guild: Optional[FakeGuild] = field(default=None, repr=False)
    channel_id: Optional[int] = None
    #: For component interactions: the message whose component was used.
    source_message: Optional[FakeMessage] = field(default=None, repr=False)

    # -- timing -----------------------------------------------------------------------------

    @property
    def sent_at(self) -> Optional[float]:
        """``time.perf_counter()`` when INTERACTION_CREATE was first written to the socket."""
        return self.event.sent_at if self.event is not None else None

    @property
    def latency(self) -> Optional[float]:
        """Seconds from INTERACTION_CREATE leaving the fake to the callback arriving."""
        if self.sent_at is None or self.callback_at is None:
            return None
        return self.callback_at - self.sent_at

    # -- what the bot did --------------------------------------------------------------------

    @property
    def acknowledged(self) -> bool:
        return self.callback is not None

    @property
    def response_type(self) -> Optional[int]:
        return None if self.callback is None else self.callback.get("type")

    @property
    def data(self) -> JSON:
        """The callback's ``data`` (message fields, modal, or autocomplete choices)."""
        return (self.callback or {}).get("data") or {}

    @property
    def edits(self) -> List[JSON]:
        """Bodies of every edit of the original response (``PATCH .../messages/@original``, or by
        its message id, as a webhook made from a saved token does), in order."""
        endings = ("/messages/@original",) + ((f"/messages/{self.original.id}",) if self.original else ())
        return [r.json or {} for r in self.requests if r.method == "PATCH" and r.path.endswith(endings)]

    @property
    def messages(self) -> List[FakeMessage]:
        """The original response (if it created one) followed by the followups."""
        first = (
            [self.original]
            if self.original is not None and self.response_type in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE)
            else []
        )
        return [*first, *self.followups]

    def _interaction_metadata(self) -> JSON:
        user = self.payload.get("member", {}).get("user") or self.payload.get("user")
        return {
            "id": str(self.id),
            "type": self.type,
            "user": user,
            "authorizing_integration_owners": self.payload.get("authorizing_integration_owners", {}),
        }

    # -- waiting -------------------------------------------------------------------------------

    def refused_callbacks(self) -> List[RecordedRequest]:
        """Callback requests the fake refused (bad type, over a limit, already acknowledged...)."""
        return [r for r in self.requests if r.path.endswith("/callback") and r.status >= 400]

    async def response(self, timeout: float = 5.0) -> JSON:
        """Wait for the bot's callback and return its body (``{"type": ..., "data": ...}``).

        Raises :class:`LateInteraction` if it arrived after the deadline (Discord would have
        answered "Unknown interaction"), and an ``AssertionError`` at once if the fake refused
        the callback (the bot then has no way left to answer), or on timeout.
        """
        await self.fake.wait_until(
            lambda: self.callback is not None or self.refused_callbacks(),
            timeout,
            f"a response to interaction {self.id}",
        )
        if self.callback is None:
            refused = self.refused_callbacks()[0]
            raise AssertionError(
                f"the bot's answer to interaction {self.id} was refused: {refused.status} {refused.error}"
            )
        if self.late:
            raise LateInteraction(
                f"interaction {self.id} was answered after {self.latency:.2f}s "
                f"(deadline {self.fake.interaction_deadline}s); Discord would have rejected it"
            )
        assert self.callback is not None
        return self.callback

    async def wait_for(
        self,
        predicate: Callable[["InteractionHandle"], Any],
        timeout: float = 5.0,
        what: str = "",
        *,
        poll: Optional[float] = 0.05,
    ) -> Any:
        """Wait until ``predicate(handle)`` is truthy (e.g. ``lambda h: len(h.edits) >= 3``)."""
        return await self.fake.wait_until(
            lambda: predicate(self), timeout, what or f"a condition on interaction {self.id}", poll=poll
        )

    async def wait_for_edits(self, count: int, timeout: float = 5.0) -> List[JSON]:
        """Wait until ``@original`` was edited at least ``count`` times; return the edit bodies."""
        await self.wait_for(
            lambda h: len(h.edits) >= count, timeout, f"{count} edits of interaction {self.id}", poll=None
        )
        return self.edits

    async def wait_for_followups(self, count: int, timeout: float = 5.0) -> List[FakeMessage]:
        await self.wait_for(
            lambda h: len(h.followups) >= count, timeout, f"{count} followups of interaction {self.id}", poll=None
        )
        return self.followups


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
