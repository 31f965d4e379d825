"""The API's JSON parser (core/jsontext.py): strict, bounded, lossless for numbers. Pure, no I/O."""

from __future__ import annotations

import json

import orjson
import pytest

from core.jsontext import MAX_DEPTH, JsonFloat, JsonTextError, canonical, check_depth, dumps, loads


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


@pytest.mark.parametrize(
    "text",
    [
        '{"user_id": 7, "payload": "{\\"a\\": 1}", "ok": true, "none": null}',
        '[1, -2, 3.25, "s", [], {}]',
        '"\\ud83d\\ude00 paired surrogates are a character"',
        '{"text": "NaN and Infinity inside strings are text"}',
        nested(MAX_DEPTH),
    ],
)
def test_ordinary_json_parses_as_the_standard_library_does(text: str) -> None:
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 900, 10_000, 200_000])
def test_nesting_beyond_the_limit_is_refused_before_any_recursion(depth: int) -> None:
    # Issue 17 defect 2: json.loads raised RecursionError (a 500) from about 1,000 levels.
    for text in (nested(depth), nested(depth, '{"k":', "}"), '{"a": ' + nested(depth) + "}"):
        with pytest.raises(JsonTextError, match=f"nested deeper than {MAX_DEPTH} levels"):
            loads(text)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"s": "[" * 500 + "{" * 500, "t": 'say \\"[[[["'})
    check_depth(text)
    assert loads(text)["s"].startswith("[[[")


def test_a_wide_document_is_not_deep() -> None:
    text = "[" + ",".join(["[]"] * 5000) + "]"
    assert len(loads(text)) == 5000


@pytest.mark.parametrize(
    ("text", "key"),
    [('{"user_id": 1, "user_id": 2}', '"user_id"'), ('[{"x": {"dup": 1, "b": 2, "dup": 3}}]', '"dup"')],
)
def test_a_duplicate_key_is_refused_naming_it(text: str, key: str) -> None:
    with pytest.raises(JsonTextError, match=f"duplicate key {key}"):
        loads(text)
    with pytest.raises(JsonTextError, match="duplicate key"):
        canonical(text)


def test_a_hostile_duplicate_key_is_named_short_and_in_ascii() -> None:
    key = "\u00e9" * 1000
    with pytest.raises(JsonTextError) as info:
        loads(json.dumps({key: 1})[:-1] + ", " + json.dumps(key) + ": 2}")
    assert info.value.problem.isascii() and len(info.value.problem) < 500


@pytest.mark.parametrize("escape", ["\\udfff", "\\udbff", "\\uDC00x", "\\ud834 \\udd1e"])
def test_a_lone_surrogate_is_refused_with_its_path(escape: str) -> None:
    text = '{"a": [1, "' + escape + '"]}'
    with pytest.raises(JsonTextError, match="lone UTF-16 surrogate") as info:
        loads(text)
    assert info.value.path == ("a", 1)


def test_a_lone_surrogate_in_a_key_is_refused() -> None:
    with pytest.raises(JsonTextError, match="lone UTF-16 surrogate"):
        loads('{"\\ud9ab": 1}')


def test_an_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    assert loads('["\\\\udc00"]') == ["\\udc00"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_python_number_extensions_are_refused_with_their_path(literal: str) -> None:
    with pytest.raises(JsonTextError, match="is not a JSON number") as info:
        loads('{"x": {"y": ' + literal + "}}")
    assert info.value.path == ("x", "y")


@pytest.mark.parametrize("text", ["", "{", "[1,]", "{'a': 1}", '{"a" 1}', "[1] 2", "tru"])
def test_invalid_json_is_a_json_text_error(text: str) -> None:
    with pytest.raises(JsonTextError):
        loads(text)


def test_the_error_keeps_no_document() -> None:
    with pytest.raises(JsonTextError) as info:
        loads('{"payload": "canary-7f3a", ')
    assert info.value.doc == "" and "canary" not in str(info.value)


def test_an_integer_of_too_many_digits_is_a_json_text_error() -> None:
    with pytest.raises(JsonTextError, match="too many digits"):
        loads("9" * 5000)


def test_bytes_must_be_utf_8() -> None:
    with pytest.raises(UnicodeDecodeError):
        loads(b'["\xed\xa0\x80"]')  # an encoded surrogate: not UTF-8


@pytest.mark.parametrize(
    "number", ["31415926535897932384626433832795", "-0.1000000000000000055511151231257827", "6.62607015E-34"]
)
def test_canonical_keeps_every_number_as_written(number: str) -> None:
    _, text = canonical('{ "n" : ' + number + ', "l": [' + number + "] }")
    assert text == '{"n":' + number + ',"l":[' + number + "]}"


def test_loads_keeps_the_text_of_lossy_floats_and_dumps_writes_it_back() -> None:
    value = loads('{"a": 0.30000000000000000001, "b": 1.5, "c": 271828182845904523536028747135}')
    assert isinstance(value["a"], JsonFloat) and value["a"] == pytest.approx(0.3)
    assert type(value["b"]) is float  # exact already: a plain float
    assert dumps(value) == '{"a":0.30000000000000000001,"b":1.5,"c":271828182845904523536028747135}'


def test_dumps_refuses_what_json_cannot_hold() -> None:
    for value in ({"n": float("nan")}, {"s": "\udc80"}):
        with pytest.raises(JsonTextError):
            dumps(value)


def test_canonical_text_is_what_orjson_reads() -> None:
    _, text = canonical('{"s": "\\u00e9\\u0000", "t": [true, false, null]}')
    assert orjson.loads(text) == {"s": "\u00e9\u0000", "t": [True, False, None]}
