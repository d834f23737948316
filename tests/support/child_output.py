"""How a child process that a crash test SIGKILLs reports to its parent."""
from __future__ import annotations

import os
import sys


def say(*fields: object) -> None:
    """One line to the parent, in ONE write to the pipe (atomic below PIPE_BUF).

    The parent SIGKILLs the child at any moment and counts what the child had reported. ``print``
    can flush a line in pieces when its buffer fills mid-line, which left the parent a truncated
    last line ("N 1234" without its name) and failed the test now and then.
    """
    os.write(sys.stdout.fileno(), (" ".join(map(str, fields)) + "\n").encode())
