"""Replies the bot is still editing, remembered so a restart can finish them.

A ``/retrain`` reply shows live progress. If the process dies, nothing else would ever edit it
again: it would show "2 %" and a Cancel button for good. So the reply is recorded when it starts
(before its first progress edit) and forgotten once it shows its final state; whatever is still
here at the next start was interrupted. These rows are working state, not records (a token that
expires in 15 minutes), so forgetting one deletes it, as its purpose says.
"""
from __future__ import annotations

from bot.services.records import LiveReply
from bot.services.store.db import Database


class LiveReplies:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def remember(self, reply: LiveReply) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO live_replies (interaction_id, guild_id, application_id, token, message_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (interaction_id) DO UPDATE SET guild_id = excluded.guild_id,"
                " application_id = excluded.application_id, token = excluded.token,"
                " message_id = excluded.message_id, created_at = excluded.created_at",
                (reply.interaction_id, reply.guild_id, reply.application_id, reply.token, reply.message_id,
                 reply.created_at))

    async def forget(self, interaction_id: int) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM live_replies WHERE interaction_id = ?", (interaction_id,))

    async def all(self) -> list[LiveReply]:
        """Every remembered reply, oldest first."""
        rows = await self._db.fetch(
            "SELECT interaction_id, guild_id, application_id, token, message_id, created_at"
            " FROM live_replies ORDER BY created_at, interaction_id")
        return [LiveReply(*row) for row in rows]
