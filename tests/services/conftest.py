"""The services' tests run on both storage backends: ``db_target`` is an SQLite file or a
PostgreSQL database (see ``tests/support/stores.py``)."""
from tests.support.stores import backend, db_target  # noqa: F401
