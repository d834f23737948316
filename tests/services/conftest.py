"""The services' tests run on both storage backends: ``db_target`` is an SQLite file or a
PostgreSQL database (see ``tests/support/stores.py``).

The ``store`` and ``raw`` fixtures here are the ones most service tests share; a test module
that needs a store with other settings (a daily limit, a clock) defines its own ``store``."""
from __future__ import annotations

from typing import AsyncIterator

import pytest

from bot.services.store import DatabaseTarget, Store
from tests.support.stores import RawDB, backend, db_target  # noqa: F401


@pytest.fixture
async def store(db_target: DatabaseTarget) -> AsyncIterator[Store]:  # noqa: F811 (the fixture, by name)
    """A store without a daily limit, closed after the test."""
    async with await Store.open(db_target, daily_limit=None) as s:
        yield s


@pytest.fixture
async def raw(db_target: DatabaseTarget) -> AsyncIterator[RawDB]:  # noqa: F811 (the fixture, by name)
    """The database read with the plain driver: what is stored, not what the store says."""
    peek = RawDB(db_target)
    yield peek
    await peek.close()
