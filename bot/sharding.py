"""Which Discord shards this process runs, and so which servers it owns.

Discord sends each server's events to one shard, ``(guild_id >> 22) % shard_count``; a bot in
2,500 servers or more must shard. ``DINOBOT_SHARD_COUNT`` and ``DINOBOT_SHARD_IDS`` split the
shards between processes (``0-3``, ``0,2``, ``0-1,4``). Unset, one process runs every shard, as
many as Discord recommends. A process serves, schedules and fine-tunes only the servers of
its own shards; the database is what they share.
"""
from __future__ import annotations

from dataclasses import dataclass


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that carries a server's events (Discord's formula)."""
    return (int(guild_id) >> 22) % shard_count


def parse_shard_ids(raw: str) -> tuple[int, ...]:
    """``"0-3"`` → (0, 1, 2, 3); ``"0,2"`` → (0, 2); ``ValueError`` saying what is wrong."""
    ids: list[int] = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            raise ValueError("has an empty item; write e.g. 0-3 or 0,2")
        low, dash, high = part.partition("-")
        try:
            first, last = int(low), int(high) if dash else int(low)
        except ValueError:
            raise ValueError(f"has {part!r}, which is not a shard number or a range like 0-3") from None
        if first < 0 or last < first:
            raise ValueError(f"has the range {part!r}; shard numbers start at 0 and ranges go up")
        ids.extend(range(first, last + 1))
    if len(set(ids)) != len(ids):
        raise ValueError("names a shard twice")
    return tuple(sorted(ids))


@dataclass(frozen=True)
class ShardPlan:
    """This process's shards: ``ids`` None means all of them (then ``count`` may be Discord's)."""

    count: int | None = None
    ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError(f"DINOBOT_SHARD_COUNT must be at least 1, not {self.count}")
        if self.ids is not None:
            if self.count is None:
                raise ValueError("DINOBOT_SHARD_IDS needs DINOBOT_SHARD_COUNT: every process of a cluster "
                                 "must agree on the number of shards")
            if not self.ids or max(self.ids) >= self.count:
                raise ValueError(f"DINOBOT_SHARD_IDS must be shards 0 to {self.count - 1} "
                                 f"of DINOBOT_SHARD_COUNT={self.count}, not {list(self.ids)}")

    @property
    def runs_all(self) -> bool:
        return self.ids is None

    def owns(self, guild_id: int) -> bool:
        """Whether this process serves the server (always, when it runs every shard)."""
        return self.ids is None or shard_of(guild_id, self.count) in self.ids  # type: ignore[arg-type]

    def runs(self, shard_id: int) -> bool:
        return self.ids is None or shard_id in self.ids

    def describe(self) -> str:
        if self.ids is None:
            return f"all {self.count} shards" if self.count else "all shards (Discord's recommended count)"
        return f"shards {', '.join(map(str, self.ids))} of {self.count}"
