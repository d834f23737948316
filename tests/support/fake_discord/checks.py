"""What the fake recorded for the end of a test: every request, the refused ones, and ``assert_clean``.

Apart from the server because these are the checks every test gets at teardown
(``tests/support/fake_checks.py``): a request Discord would refuse, a route the fake does not
model, a crash of the fake itself, an unexpected gateway frame or a late interaction answer must
fail the test even when its own assertions passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List

from .interactions import InteractionHandle
from .rest import RecordedRequest

if TYPE_CHECKING:
    from .gateway import FakeGateway


class Checks:
    """``FakeDiscord``'s records and checks (a mixin: the facade provides ``gateway`` and ``interactions``)."""

    gateway: "FakeGateway"
    interactions: Dict[int, InteractionHandle]

    def _init_checks(self) -> None:
        #: Every API request, in arrival order.
        self.requests: List[RecordedRequest] = []
        #: Requests to routes the fake does not model (each also answered 404).
        self.unknown_routes: List[RecordedRequest] = []
        #: Crashes inside the fake itself (each also answered 400): a bug in the fake or a garbled request.
        self.errors: List[str] = []

    def latencies(self) -> List[float]:
        """INTERACTION_CREATE → callback seconds for every answered interaction, in injection order."""
        return [h.latency for h in self.interactions.values() if h.latency is not None]

    @property
    def api_errors(self) -> List[RecordedRequest]:
        """Requests the fake answered with 4xx (the bot did something Discord would refuse)."""
        return [r for r in self.requests if r.status >= 400]

    def _problems(self, *, allow_api_errors: bool = False) -> List[str]:
        """Everything surprising the fake saw, one line each (empty: all is well)."""
        problems: List[str] = []
        problems += [f"unknown route: {r.method} {r.path}" for r in self.unknown_routes]
        problems += [f"fake discord error: {e}" for e in self.errors]
        problems += [f"unexpected gateway frame: {f!r}" for f in self.gateway.unexpected_frames]
        problems += [
            f"late answer to interaction {h.id} ({h.latency:.2f}s)" for h in self.interactions.values() if h.late
        ]
        if not allow_api_errors:
            problems += [
                f"refused: {r.method} {r.path} -> {r.status}: {r.json!r}"
                for r in self.api_errors
                if r not in self.unknown_routes
            ]
        return problems

    def assert_clean(self, *, allow_api_errors: bool = False) -> None:
        """Fail if anything surprising happened: unknown routes, crashes in the fake, unexpected
        gateway frames, late interactions, and (unless allowed) requests Discord would refuse."""
        problems = self._problems(allow_api_errors=allow_api_errors)
        if problems:
            raise AssertionError("fake discord saw problems:\n  " + "\n  ".join(problems))
