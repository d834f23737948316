"""The one type alias every module of the fake shares: a decoded JSON object.

Its own module so that the models, the payload builders, the REST routes and the gateway can all
name it without importing each other.
"""

from __future__ import annotations

from typing import Any, Dict

JSON = Dict[str, Any]
