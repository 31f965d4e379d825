"""Named SQL queries (core/queries.py): parsing is pure; the shipped files are only read."""

from __future__ import annotations

import pytest

from core.queries import load_queries, parse_queries, queries

TWO_QUERIES = """\
-- A file-level comment before any header is ignored.

-- name: first_query
-- Describes the first query.
-- Over two lines.
SELECT 1
FROM t
WHERE a = $1;

-- name: second_query
UPDATE t SET b = $2 WHERE a = $1
"""


def test_parse_names_in_order() -> None:
    parsed = parse_queries(TWO_QUERIES)
    assert list(parsed) == ["first_query", "second_query"]


def test_descriptions_are_stripped_and_sql_kept() -> None:
    parsed = parse_queries(TWO_QUERIES)
    assert parsed["first_query"] == "SELECT 1\nFROM t\nWHERE a = $1"
    assert "Describes" not in parsed["first_query"]
    assert "--" not in parsed["first_query"]


def test_trailing_semicolon_is_stripped() -> None:
    parsed = parse_queries(TWO_QUERIES)
    assert not parsed["first_query"].endswith(";")
    assert parsed["second_query"] == "UPDATE t SET b = $2 WHERE a = $1"


def test_trailing_semicolon_and_whitespace_are_stripped() -> None:
    assert parse_queries("-- name: q\nSELECT 2 ;  \n\n") == {"q": "SELECT 2"}


def test_header_spacing_is_flexible() -> None:
    parsed = parse_queries("--name:a\nSELECT 1;\n--   name:   b  \nSELECT 2;\n")
    assert parsed == {"a": "SELECT 1", "b": "SELECT 2"}


def test_comment_lines_inside_the_body_are_dropped() -> None:
    parsed = parse_queries("-- name: q\nSELECT 1\n    -- an indented note\nFROM t;\n")
    assert parsed == {"q": "SELECT 1\nFROM t"}


def test_text_without_headers_has_no_queries() -> None:
    assert parse_queries("-- just a comment\n") == {}
    assert parse_queries("") == {}


def test_duplicate_name_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"'q' is defined twice"):
        parse_queries("-- name: q\nSELECT 1;\n-- name: q\nSELECT 2;\n")


@pytest.mark.parametrize(
    "text",
    [
        "-- name: q\n",
        "-- name: q\n-- only a description\n",
        "-- name: q\n;\n",
        "-- name: q\n-- description\n\n;\n-- name: r\nSELECT 1;\n",
    ],
)
def test_empty_query_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"'q' is empty"):
        parse_queries(text)


def test_a_name_in_the_middle_of_a_line_is_not_a_header() -> None:
    parsed = parse_queries("-- name: q\nSELECT 1 -- name: not_a_header\n;\n")
    assert list(parsed) == ["q"]


# --- the shipped queries ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["claim_due", "record_fires", "mark_sent", "insert_reminder"])
def test_shipped_queries_include_the_hot_path(name: str) -> None:
    assert name in load_queries()
    assert load_queries()[name].strip()


def test_claim_due_skips_locked_rows() -> None:
    assert "FOR UPDATE SKIP LOCKED" in load_queries()["claim_due"]


def test_shipped_queries_have_no_trailing_semicolons_or_headers() -> None:
    for name, sql in load_queries().items():
        assert not sql.endswith(";"), name
        assert "-- name:" not in sql, name


def test_module_level_queries_is_the_loaded_set() -> None:
    assert queries == load_queries()
