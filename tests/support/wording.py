"""What every reply a member reads must look like: a sentence, no jargon, no traceback."""
from __future__ import annotations

JARGON = ("nats", "Traceback", "Error:", "Exception", "None")


def assert_sentence(text: str) -> None:
    """Starts with a capital (or an emoji or a quoted character, never a lower-case letter),
    ends like a sentence, and carries none of :data:`JARGON`."""
    text = text.strip()
    assert text and not text[0].islower(), f"does not start like a sentence: {text!r}"
    assert text.endswith((".", "!", "?", "…")), f"does not end like a sentence: {text!r}"
    found = [word for word in JARGON if word in text]
    assert not found, f"{found} in a member's reply: {text!r}"
