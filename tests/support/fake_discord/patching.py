"""Pointing discord.py at the fake: its REST base and default gateway URL, swapped in and back.

Apart from the server because it touches discord.py's class attributes, not the fake: the bot
under test runs unmodified, and only these two URLs change for the duration of a test.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import yarl


class DiscordPatch:
    """Swaps discord.py's REST base and default gateway for the fake's, and back."""

    def __init__(self, rest_base: str, gateway_url: str) -> None:
        self._rest_base, self._gateway_url = rest_base, gateway_url
        self._saved: Optional[Tuple[str, yarl.URL]] = None

    def __enter__(self) -> "DiscordPatch":
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = self._rest_base  # type: ignore[misc]
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._gateway_url)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        assert self._saved is not None
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved  # type: ignore[misc]
        self._saved = None

    async def __aenter__(self) -> "DiscordPatch":
        return self.__enter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        self.__exit__(*exc_info)
