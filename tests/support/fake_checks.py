"""The check every test that talks to the fake Discord gets at teardown, without asking.

After the test (and after the bot under test has shut down, so its last requests count too) the
fake must have seen nothing Discord would refuse (no 4xx on an edit or follow-up), no route it
does not model, no crash of its own, no unexpected gateway frame and no late interaction answer.
A test that provokes refusals on purpose says so with ``@pytest.mark.fake_refusals`` (4xx allowed,
everything else still checked); ``@pytest.mark.fake_unchecked`` skips the check entirely, for the
few tests of the fake itself that provoke the other problems on purpose.
"""
from __future__ import annotations

import pytest

from tests.support.fake_discord import FakeDiscord


def check_fake_at_teardown(fake: FakeDiscord, request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("fake_unchecked") is not None:
        return
    fake.assert_clean(allow_api_errors=request.node.get_closest_marker("fake_refusals") is not None)
