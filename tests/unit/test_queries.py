"""Named SQL queries (core/queries.py): parsing is pure; the shipped files are only read."""

from __future__ import annotations

from dataclasses import dataclass, fields

import pytest

from core.queries import Query, load_queries, named, parse_queries, queries, to_positional
from core.store.fires import RecordFires
from core.store.reminders import NewReminder

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


def sqls(text: str) -> dict[str, str]:
    return {name: query.sql for name, query in parse_queries(text).items()}


def test_parse_names_in_order() -> None:
    parsed = parse_queries(TWO_QUERIES)
    assert list(parsed) == ["first_query", "second_query"]


def test_descriptions_are_stripped_and_sql_kept() -> None:
    parsed = sqls(TWO_QUERIES)
    assert parsed["first_query"] == "SELECT 1\nFROM t\nWHERE a = $1"
    assert "Describes" not in parsed["first_query"]
    assert "--" not in parsed["first_query"]


def test_trailing_semicolon_is_stripped() -> None:
    parsed = sqls(TWO_QUERIES)
    assert not parsed["first_query"].endswith(";")
    assert parsed["second_query"] == "UPDATE t SET b = $2 WHERE a = $1"


def test_trailing_semicolon_and_whitespace_are_stripped() -> None:
    assert sqls("-- name: q\nSELECT 2 ;  \n\n") == {"q": "SELECT 2"}


def test_header_spacing_is_flexible() -> None:
    parsed = sqls("--name:a\nSELECT 1;\n--   name:   b  \nSELECT 2;\n")
    assert parsed == {"a": "SELECT 1", "b": "SELECT 2"}


def test_comment_lines_inside_the_body_are_dropped() -> None:
    parsed = sqls("-- name: q\nSELECT 1\n    -- an indented note\nFROM t;\n")
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
    assert load_queries()[name].sql.strip()


def test_claim_due_skips_locked_rows() -> None:
    assert "FOR UPDATE SKIP LOCKED" in load_queries()["claim_due"].sql


def test_shipped_queries_have_no_trailing_semicolons_or_headers() -> None:
    for name, sql in queries.items():
        assert not sql.endswith(";"), name
        assert "-- name:" not in sql, name


def test_module_level_queries_is_the_loaded_set() -> None:
    assert named == load_queries()
    assert queries == {name: query.sql for name, query in load_queries().items()}


# --- named parameters ---------------------------------------------------------------------------


def test_names_become_numbers_in_order_of_first_use() -> None:
    query = to_positional("q", "SELECT :b, :a FROM t WHERE x = :b AND y = :a_long")
    assert query.sql == "SELECT $1, $2 FROM t WHERE x = $1 AND y = $3"
    assert query.params == ("b", "a", "a_long")


def test_casts_text_and_comments_are_not_parameters() -> None:
    sql = "SELECT :ids::uuid[], 'at :noon', \"col:x\", 'it''s :not' -- :nor this\nFROM t WHERE a = :a::int"
    query = to_positional("q", sql)
    assert query.params == ("ids", "a")
    assert query.sql == (
        "SELECT $1::uuid[], 'at :noon', \"col:x\", 'it''s :not' -- :nor this\nFROM t WHERE a = $2::int"
    )


def test_positional_queries_are_left_as_they_are() -> None:
    query = to_positional("q", "SELECT $1::text, 'a:b' WHERE x = $2")
    assert (query.sql, query.params) == ("SELECT $1::text, 'a:b' WHERE x = $2", ())


def test_a_query_cannot_mix_both_spellings() -> None:
    with pytest.raises(ValueError, match="mixes"):
        to_positional("q", "SELECT :a, $2")


@dataclass(frozen=True, slots=True)
class Pair:
    a: int
    b: str


def test_args_come_from_the_fields_of_the_same_names() -> None:
    assert to_positional("q", "SELECT :b, :a").args(Pair(a=1, b="x")) == ("x", 1)
    assert to_positional("q", "SELECT :a").args(Pair(a=1, b="x")) == (1,)


def test_check_names_what_a_params_class_lacks_or_adds() -> None:
    to_positional("q", "SELECT :a, :b").check(Pair)
    with pytest.raises(TypeError, match=r"missing \['c'\], not in the query \['b'\]"):
        to_positional("q", "SELECT :a, :c").check(Pair)
    with pytest.raises(TypeError, match="not a dataclass"):
        Query("q", "SELECT $1", ("a",)).check(int)


@pytest.mark.parametrize("name", ["create_reminders", "create_reminders_within_cap"])
def test_the_create_queries_take_a_new_reminders_fields_and_the_cap(name: str) -> None:
    assert set(named[name].params) == {f.name for f in fields(NewReminder)} | {"live_cap"}


def test_record_fires_takes_exactly_the_fields_of_its_params() -> None:
    named["record_fires"].check(RecordFires)


def test_the_two_create_queries_unpack_and_insert_alike() -> None:
    """Two statements, not one with a mode flag (which cost the optimistic one the exact one's
    CTEs): what they share must stay the same text."""
    optimistic, exact = named["create_reminders"].sql, named["create_reminders_within_cap"].sql

    def between(sql: str, start: str, end: str) -> str:
        return sql[sql.index(start) : sql.index(end, sql.index(start))]

    assert between(optimistic, "FROM unnest(", "AS n(") == between(exact, "FROM unnest(", "WITH ORDINALITY")
    assert between(optimistic, "INSERT INTO reminders", "FROM n") == between(
        exact, "INSERT INTO reminders", "FROM admitted"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT $$ :a $$, :b",
        "SELECT /* :a */ :b",
        r"SELECT E'it\'s :a', :b",
        "SELECT (:arr::int[])[:n]",
        "SELECT (:arr::int[])[1 :n]",
    ],
)
def test_what_the_scanner_does_not_read_fails_at_load(sql: str) -> None:
    with pytest.raises(ValueError, match="does not read"):
        to_positional("q", sql)


def test_names_may_have_capitals() -> None:
    assert to_positional("q", "SELECT :fooBar").params == ("fooBar",)
