"""Interactions as a test holds them: the type numbers, and what the bot did with each one.

An :class:`InteractionHandle` is what a test holds after injecting a slash command, a button
click or a modal submission. It collects, in order, every request the bot made with that
interaction's id or token (the callback, edits of ``@original``, followups), so a test reads
the conversation the way a Discord user would see it unfold. Building the payloads that start an
interaction is ``interaction_data``'s and ``payloads``' job; injecting them is ``injecting``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from .guilds import FakeGuild, FakeUser
from .jsontypes import JSON
from .messages import FakeMessage

if TYPE_CHECKING:
    from .gateway import SentEvent
    from .rest.plumbing import RecordedRequest
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
