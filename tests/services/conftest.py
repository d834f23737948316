"""The services' tests run on both storage backends: ``db_target`` is an SQLite file or a
PostgreSQL database (see ``tests/support/backends.py``)."""
from tests.support.backends import backend, db_target, pg_url  # noqa: F401
