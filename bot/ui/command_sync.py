"""Sync slash commands at start only when needed, per application and scope.

Discord rate-limits command syncs hard, and syncing on every start (or worse, in ``on_ready``,
which runs again after every reconnect) is the classic way to hit it. So the JSON of the command
tree is hashed, and the hash is stored in the data folder under the application's id and the
scope (``guild:<id>`` for the dev server, or ``global``); a start with the same hash for the
same application and scope skips the sync. Keyed by application, a new token (a new application)
with the same data folder gets its commands; ``python -m bot --sync`` forces a sync anyway.

When the scope is global, commands this application left in former dev servers are removed, so
members there do not see every command twice.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import discord
from discord import app_commands

from bot.errors import EXIT_CONFIG, StartupError

log = logging.getLogger(__name__)

STATE_VERSION = 2  # {"version": 2, "applications": {"<application id>": {"<scope>": "<hash>"}}}


def commands_hash(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    payload = [command.to_dict(tree) for command in tree.get_commands(guild=guild)]
    payload.sort(key=lambda c: (c.get("type", 1), c["name"]))
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def sync_commands(tree: app_commands.CommandTree, state_file: Path, *, application_id: int | None,
                        dev_guild_id: int | None, force: bool = False) -> bool:
    """Sync to the dev server when set (instant), else globally; return whether it synced.

    Raises :class:`StartupError` (exit 2) when Discord refuses the dev server: the bot is not
    in it, or was added without the ``applications.commands`` scope.
    """
    guild = discord.Object(dev_guild_id) if dev_guild_id else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    scope = _scope(dev_guild_id)
    state = _read(state_file)
    synced_here = state.setdefault(str(application_id), {})
    digest = commands_hash(tree, guild)
    synced = False
    if force or synced_here.get(scope) != digest:
        commands = await _sync(tree, guild, application_id)
        synced_here[scope] = digest
        _write(state_file, state)
        log.info("synced %d slash commands (%s%s)", len(commands), scope, ", forced" if force else "")
        synced = True
    else:
        log.info("slash commands unchanged since the last sync (%s); not syncing (python -m bot --sync "
                 "forces it)", scope)
    if dev_guild_id is None:
        await _remove_from_former_dev_servers(tree, state_file, state, synced_here)
    return synced


async def _sync(tree: app_commands.CommandTree, guild: discord.Object | None,
                application_id: int | None) -> list[app_commands.AppCommand]:
    try:
        return await tree.sync(guild=guild)
    except discord.Forbidden as exc:
        if guild is None:
            raise
        invite = discord.utils.oauth_url(application_id or 0, permissions=discord.Permissions.none(),
                                         scopes=("bot", "applications.commands"))
        refusal = f"{exc.status} {exc.text or 'Forbidden'}"
        raise StartupError(f"DEV_GUILD_ID: Discord refused to sync commands to server {guild.id} "
                           f"({refusal}): the bot is not in that server (or was added without the "
                           "applications.commands scope). "
                           f"Invite it with {invite}, or unset DEV_GUILD_ID to sync globally",
                           EXIT_CONFIG) from None


async def _remove_from_former_dev_servers(tree: app_commands.CommandTree, state_file: Path,
                                          state: dict, synced_here: dict[str, str]) -> None:
    """Global commands now: empty every dev server this application synced to before."""
    for scope in [s for s in synced_here if s.startswith("guild:")]:
        guild_id = int(scope.partition(":")[2])
        try:
            await tree.sync(guild=discord.Object(guild_id))  # nothing is registered for it: an empty list
            log.info("removed the slash commands left in former dev server %d (DEV_GUILD_ID is unset)",
                     guild_id)
        except discord.HTTPException as exc:
            log.warning("could not remove the slash commands left in former dev server %d (%s %s); "
                        "they go away when the bot leaves that server", guild_id, exc.status, exc.text)
        del synced_here[scope]
        _write(state_file, state)


def _scope(dev_guild_id: int | None) -> str:
    return f"guild:{dev_guild_id}" if dev_guild_id else "global"


def _read(path: Path) -> dict:
    """The state per application; a missing, damaged or older file is an empty one (so: sync)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        return {}
    apps = data.get("applications")
    if not isinstance(apps, dict):
        return {}
    return {app: dict(scopes) for app, scopes in apps.items() if isinstance(scopes, dict)}


def _write(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": STATE_VERSION, "applications": state}, indent=2))
    os.replace(tmp, path)
