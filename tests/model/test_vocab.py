import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model import InvalidName, normalize_name, normalize_prefix
from model.vocab import END_ID, decode, decode_rows, encode, encode_batch


@pytest.mark.parametrize("raw, expected", [
    ("tyrannosaurus", "tyrannosaurus"), ("  Velociraptor\n", "velociraptor"), ("MEI", "mei"),
])
def test_normalises_trim_and_case(raw, expected):
    assert normalize_name(raw) == expected


@pytest.mark.parametrize("raw, fragment", [
    ("", "cannot be empty"), ("   ", "cannot be empty"), ("ab", "3–32 letters"),
    ("x" * 33, "at most 32"), ("x" * 10_000, "at most 32"),
    ("tyr1", "digit '1'"), ("t rex", "a space"), ("t-rex", "hyphen"),
    ("straße", "sharp s"), ("\u0430bc", "cyrillic"),  # Cyrillic 'а' looks like 'a'
    ("\u212aarl", "kelvin"),  # str.lower() would turn it into 'k'
    ("rex🦖", "not a letter"), ("tab\tname", "whitespace"), ("zero\u200bwidth", "not a letter"),
    ("café", "not a letter"),
])
def test_rejects_with_a_message_that_names_the_problem(raw, fragment):
    with pytest.raises(InvalidName) as info:
        normalize_name(raw)
    assert fragment.lower() in str(info.value).lower()


def test_rejects_non_text():
    with pytest.raises(InvalidName, match="must be text"):
        normalize_name(None)  # type: ignore[arg-type]


@given(st.text(max_size=60))
def test_any_text_is_either_a_clean_name_or_a_clear_refusal(raw):
    try:
        name = normalize_name(raw)
    except InvalidName as exc:
        assert str(exc)
        return
    assert 3 <= len(name) <= 32 and set(name) <= set(string.ascii_lowercase)
    assert name == raw.strip().lower()


@given(st.text(alphabet=string.ascii_letters, min_size=3, max_size=32))
def test_every_ascii_word_round_trips(word):
    name = normalize_name(word)
    assert decode(encode(name)) == name


def test_prefix_may_be_empty_but_not_junk():
    assert normalize_prefix(None) == "" and normalize_prefix("  ") == ""
    assert normalize_prefix("Tyr") == "tyr"
    with pytest.raises(InvalidName, match="prefix"):
        normalize_prefix("ty r")


def test_batch_encoding_follows_the_corpus_protocol():
    inputs, targets, mask = encode_batch(["ab", "c"])
    assert inputs.tolist() == [[-1, 1, 2], [-1, 3, -1]]  # start state first, then the letters
    assert targets.tolist() == [[1, 2, END_ID], [3, END_ID, 0]]  # letters, then end-of-name
    assert mask.sum() == (2 + 1) + (1 + 1)  # n + 1 predictions per n-letter name


def test_decode_rows_stops_at_the_end_symbol():
    rows = np.array([[1, 2, 0, 5], [26, 26, 26, 26]])
    assert decode_rows(rows) == ["ab", "zzzz"]
