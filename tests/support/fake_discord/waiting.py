"""Waiting for the bot: wake-ups on every change the fake sees, and the waits tests use most.

Apart from the server because every part of the fake (REST middleware, gateway, handles) signals
changes through ``_notify``, and tests wait on them through ``wait_until``; the rule that waits
on the fake alone do not poll (a benchmark may run hundreds of them in the bot's own event loop)
lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from .gateway import FakeGateway, GatewayConnection


class WaitTimeout(AssertionError):
    """A ``wait_until`` ran out of time: the bot did not do what the test expected."""


class Waiting:
    """``FakeDiscord``'s waits (a mixin: the facade provides ``gateway``)."""

    gateway: "FakeGateway"

    def _init_waiting(self) -> None:
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        """Wake every ``wait_until``: something changed."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5.0,
        what: str = "a condition",
        *,
        poll: Optional[float] = 0.05,
    ) -> Any:
        """Wait until ``predicate()`` is truthy and return its value.

        Re-checked whenever the fake's state changes, and also every ``poll`` seconds so that
        predicates on the bot's own state (``lambda: bot.get_guild(1)``) work. Waits that only
        look at the fake pass ``poll=None``: with hundreds of concurrent waiters (a benchmark
        sharing the bot's event loop) polling would add to the latency being measured.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeout(f"timed out after {timeout}s waiting for {what}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining if poll is None else min(remaining, poll))

    async def wait_for_ready(self, count: int = 1, timeout: float = 10.0, *, shard_id: Optional[int] = None) -> None:
        """Wait until the bot has identified ``count`` times in total and the connection is live.

        "Ready" here means READY and every GUILD_CREATE were sent: from then on an injected
        interaction reaches a client that knows its guilds. (discord.py's own ``on_ready`` fires
        ``guild_ready_timeout`` seconds later; set that option small in tests that wait for it.)
        With several shards, ``count`` adds up every shard's READYs and all of them must be live;
        ``shard_id`` waits for that one shard alone (its ``count``-th READY, its session live).
        """
        if shard_id is None:
            await self.wait_until(
                lambda: self.gateway.ready_count >= count and self.gateway.live, timeout, f"READY #{count}", poll=None
            )
            return

        def shard_ready() -> bool:
            readies = sum(1 for c in self.gateway.connections if c.ready and c.shard and c.shard[0] == shard_id)
            session = self.gateway.sessions.get(shard_id)
            return readies >= count and session is not None and session.live

        await self.wait_until(shard_ready, timeout, f"READY #{count} of shard {shard_id}", poll=None)

    async def wait_for_resume(self, count: int = 1, timeout: float = 10.0) -> GatewayConnection:
        """Wait until ``count`` successful RESUMEs happened and the connection is live again."""
        await self.wait_until(
            lambda: self.gateway.count("resume", resumed=True) >= count and self.gateway.live,
            timeout,
            f"RESUME #{count}",
            poll=None,
        )
        assert self.gateway.current is not None
        return self.gateway.current
