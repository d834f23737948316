"""📖 Meaning: the roots table's consistency, and reading names by their roots."""
from __future__ import annotations

import pytest

from bot.services.meaning import LANGUAGES, ROOTS_FILE, RootTableError, default_roots, explain, parse_roots
from model.errors import InvalidName


def rows() -> list[list[str]]:
    lines = ROOTS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith(("#", "root\t"))]


def test_the_table_has_at_least_150_roots_each_with_language_and_meaning() -> None:
    table = rows()
    assert len(table) >= 150
    assert all(len(row) == 3 and all(cell.strip() == cell and cell for cell in row) for row in table)
    assert {language for _, language, _ in table} <= LANGUAGES
    assert sum(language in ("Greek", "Latin") for _, language, _ in table) >= 150


def test_roots_are_lower_case_a_to_z_and_listed_once() -> None:
    roots = [root for root, _, _ in rows()]
    assert all(root.isascii() and root.isalpha() and root.islower() for root in roots)
    assert len(roots) == len(set(roots))
    assert len(default_roots()) == len(roots)


@pytest.mark.parametrize("text, problem", [
    ("saurus\tGreek\tlizard\nsaurus\tGreek\tlizard again\n", "listed twice"),
    ("Saurus\tGreek\tlizard\n", "lower-case letters"),
    ("sau rus\tGreek\tlizard\n", "lower-case letters"),
    ("saurus\tKlingon\tlizard\n", "unknown language"),
    ("saurus\tGreek\n", "separated by tabs"),
])
def test_a_malformed_table_is_refused_with_its_line(text: str, problem: str) -> None:
    with pytest.raises(RootTableError, match=problem) as info:
        parse_roots("# comment\n" + text, "t.tsv")
    assert "t.tsv, line" in str(info.value)


def parts(name: str) -> list[tuple[str, str | None]]:
    return [(p.text, p.root.meaning if p.root else None) for p in explain(name).parts]


def test_names_are_read_as_their_roots() -> None:
    assert parts("Tyrannotitan") == [("tyranno", "tyrant"), ("titan", "giant")]
    assert parts("triceratops") == [("tri", "three"), ("cerat", "horn"), ("ops", "face")]
    assert parts("velociraptor") == [("veloci", "swift"), ("raptor", "robber, plunderer")]
    assert [t for t, _ in parts("carcharodontosaurus")] == ["carchar", "odonto", "saurus"]


def test_a_linking_vowel_joins_the_root_before_it() -> None:
    explanation = explain("carnotaurus")
    assert [p.text for p in explanation.parts] == ["carno", "taurus"]
    assert [p.text for p in explain("titanosaurus").parts] == ["titano", "saurus"]
    assert [p.text for p in explain("titanasaurus").parts] == ["titana", "saurus"]  # "a" links too


def test_unknown_letters_are_said_honestly_not_guessed() -> None:
    explanation = explain("Zorbosaurus")
    assert [(p.text, p.root is None) for p in explanation.parts] == [("zorbo", True), ("saurus", False)]
    assert explanation.explained_letters == 6
    nothing = explain("xqzv")
    assert [(p.text, p.root) for p in nothing.parts] == [("xqzv", None)] and nothing.explained_letters == 0


def test_every_letter_is_in_exactly_one_part() -> None:
    for name in ("brontofex", "glimmerosaurus", "eodromaeus", "qqqsaurusqqq", "aaa"):
        assert "".join(p.text for p in explain(name).parts) == name


def test_text_that_is_not_a_name_is_refused() -> None:
    with pytest.raises(InvalidName):
        explain("ty7")
