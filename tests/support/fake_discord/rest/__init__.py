"""The fake REST API (v10): the routes discord.py calls at login and in interaction flows.

Its parts: ``api`` (the middleware every request passes, and the fallbacks), ``plumbing``
(request records, body parsing, JSON replies), ``errors`` (Discord's error shape and codes),
``limits`` (Discord's documented limits), and one module of routes per resource: ``login``
(gateway URL, users, application), ``commands`` (application commands), ``webhooks``
(interaction callbacks and followups), ``messages`` (channels and messages), ``guilds``.
"""

from __future__ import annotations

from .api import RestApi
from .plumbing import API_PREFIX, RecordedRequest

__all__ = ["API_PREFIX", "RecordedRequest", "RestApi"]
