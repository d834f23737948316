"""Distinct valid names for every integer, for tests and benchmarks that need many of them."""


def letters(i: int) -> str:
    """``i`` written in base 26 with the digits a–z (least significant first): 0 → 'a'."""
    out = ""
    while True:
        i, r = divmod(i, 26)
        out += chr(ord("a") + r)
        if i == 0:
            return out


def name_for(i: int) -> str:
    """'dino' + :func:`letters`: always 5+ letters a–z, so always a valid name."""
    return "dino" + letters(i)
