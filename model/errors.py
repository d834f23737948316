"""Exceptions the model library raises.

Every message is written for the person who caused it (a Discord member typing a name, an
operator pointing the CLI at a file), so callers can show ``str(exc)`` as it is.
"""


class ModelError(Exception):
    """Base class for every error the model library raises on purpose."""


class InvalidName(ModelError, ValueError):
    """A name or prefix that cannot be written in the model's alphabet."""


class CheckpointError(ModelError):
    """A checkpoint that is missing, corrupt, truncated or made for another vocabulary."""


class CorpusError(ModelError):
    """A names file that is missing, empty or holds lines that are not names."""
