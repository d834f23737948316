"""Sync slash commands only when their definitions changed since the last sync.

Discord rate-limits command syncs hard, and syncing on every start (or worse, in ``on_ready``,
which runs again after every reconnect) is the classic way to hit it. The JSON of the command
tree is hashed and the hash stored per scope (the dev server, or global); a start with the same
hash skips the sync.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import discord
from discord import app_commands

log = logging.getLogger(__name__)


def commands_hash(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    payload.sort(key=lambda c: (c.get("type", 1), c["name"]))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def sync_if_changed(tree: app_commands.CommandTree, state_file: Path, dev_guild_id: int | None) -> bool:
    """Sync to the dev server when set (instant), else globally; return whether it synced."""
    guild = discord.Object(dev_guild_id) if dev_guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    scope = f"guild:{dev_guild_id}" if guild else "global"
    digest = commands_hash(tree, guild)
    state = _read(state_file)
    if state.get(scope) == digest:
        log.info("slash commands unchanged since the last sync (%s); not syncing", scope)
        return False
    synced = await tree.sync(guild=guild)
    state[scope] = digest
    _write(state_file, state)
    log.info("synced %d slash commands (%s)", len(synced), scope)
    return True


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, state: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, path)
