"""Payloads assembled from several objects and the fake's settings, in Discord's API v10 shapes.

Each model renders itself (``to_payload``); what is built here combines them with who the bot is
and how the fake is set up: the bot's own user, the application, READY, ``GET /gateway/bot``, DM
channels, INTERACTION_CREATE and the callback's ``with_response`` body. Kept apart from the state
(``server``, ``world``) and the handlers (``rest``, ``gateway``) because discord.py parses all of
these and a missing key fails deep inside it: the required keys are listed here once.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from .guilds import FakeChannel, FakeGuild, FakeMember, FakeUser
from .interactions import DEFERRED_CHANNEL_MESSAGE
from .jsontypes import JSON
from .messages import FakeMessage


def bot_user_payload(bot_user: FakeUser) -> JSON:
    """``GET /users/@me`` and READY's ``user``: the bot's own account."""
    return {**bot_user.to_payload(), "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"}


def application_payload(application_id: int, bot_user: FakeUser, owner: FakeUser, guild_count: int) -> JSON:
    """``GET /applications/@me``: what ``Bot.is_owner`` and ``application_info()`` read."""
    return {
        "id": str(application_id),
        "name": bot_user.username,
        "icon": None,
        "description": "A fake application served by tests.fake_discord",
        "summary": "",
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "owner": owner.to_payload(),
        "team": None,
        "flags": 0,
        "rpc_origins": [],
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "bot": bot_user.to_payload(),
        "approximate_guild_count": guild_count,
    }


def gateway_bot_payload(gateway_url: str, shards: int) -> JSON:
    """``GET /gateway/bot``: where to connect and how many shards Discord recommends."""
    return {
        "url": gateway_url,
        "shards": shards,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
    }


def ready_payload(
    session_id: str,
    *,
    shard: Sequence[int],
    bot_user: FakeUser,
    application_id: int,
    guilds: Sequence[FakeGuild],
    resume_gateway_url: str,
) -> JSON:
    """READY for one shard's session; its ``guilds`` are unavailable until their GUILD_CREATE."""
    return {
        "v": 10,
        "user": bot_user_payload(bot_user),
        "guilds": [{"id": str(guild.id), "unavailable": True} for guild in guilds],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_gateway_url,
        "shard": list(shard),
        "application": {"id": str(application_id), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "geo_ordered_rtc_regions": [],
        "guild_join_requests": [],
    }


def dm_channel_payload(channel_id: int, user: FakeUser) -> JSON:
    """The DM channel between the bot and ``user``."""
    return {
        "id": str(channel_id),
        "type": 1,
        "recipients": [user.to_payload()],
        "last_message_id": None,
        "flags": 0,
    }


def interaction_payload(
    interaction_id: int,
    token: str,
    interaction_type: int,
    data: JSON,
    *,
    application_id: int,
    locale: str,
    attachment_size_limit: int,
    app_permissions: int,
) -> JSON:
    """The INTERACTION_CREATE fields that do not depend on where it happened (see below for those)."""
    return {
        "id": str(interaction_id),
        "application_id": str(application_id),
        "type": interaction_type,
        "data": data,
        "token": token,
        "version": 1,
        "locale": locale,
        "attachment_size_limit": attachment_size_limit,
        "app_permissions": str(app_permissions),
        "entitlements": [],
    }


def guild_interaction_fields(guild: FakeGuild, channel: FakeChannel, user: FakeUser, permissions: Any) -> JSON:
    """An interaction's fields in a guild channel; ``permissions`` ``None`` means what the roles give."""
    if permissions is None:
        permissions = guild.permissions_for(user.id)
    member = guild.member(user.id) or FakeMember(user=user)
    return {
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "guild_locale": "en-US",
        "channel_id": str(channel.id),
        "channel": channel.to_payload(guild.id),
        "member": member.to_payload(int(getattr(permissions, "value", permissions))),
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
    }


def dm_interaction_fields(dm: JSON, user: FakeUser) -> JSON:
    """An interaction's fields in the bot's DM with ``user``."""
    return {
        "channel_id": dm["id"],
        "channel": dm,
        "user": user.to_payload(),
        "authorizing_integration_owners": {},
        "context": 1,
    }


def interaction_metadata(interaction_id: int, interaction_type: int, payload: JSON) -> JSON:
    """``interaction_metadata`` of a message created through an interaction (reply or followup)."""
    user = payload.get("member", {}).get("user") or payload.get("user")
    return {
        "id": str(interaction_id),
        "type": interaction_type,
        "user": user,
        "authorizing_integration_owners": payload.get("authorizing_integration_owners", {}),
    }


def callback_response_payload(
    interaction_id: int, interaction_type: int, response_type: Any, message: Optional[FakeMessage]
) -> JSON:
    """The body of a callback sent ``?with_response=true``: the interaction and what it created."""
    interaction: JSON = {
        "id": str(interaction_id),
        "type": interaction_type,
        "activity_instance_id": None,
        "response_message_id": str(message.id) if message else None,
        "response_message_loading": response_type == DEFERRED_CHANNEL_MESSAGE,
        "response_message_ephemeral": bool(message and message.ephemeral),
    }
    resource: JSON = {"type": response_type}
    if message is not None:
        resource["message"] = message.to_payload()
    return {"interaction": interaction, "resource": resource}

