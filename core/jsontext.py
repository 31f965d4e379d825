"""The one JSON parser of the API: strict, bounded, and lossless for numbers.

Every JSON the API reads (request bodies, the payload text, ack details) goes through ``loads``,
which refuses, with a ``JsonTextError`` naming the problem:

- nesting deeper than ``MAX_DEPTH`` (64) levels, checked *before* parsing: the standard library's
  parser recurses and raises ``RecursionError`` near 1,000 levels, a 500. 64 is far above any real
  body (a create is 2 levels, its payload a few more) and far below PostgreSQL's jsonb limits;
- a duplicate key in an object (the standard library keeps the last one silently);
- a lone UTF-16 surrogate escape (``"\\ud800"``): no UTF-8 text, database or answer can hold it;
- ``NaN``, ``Infinity``, ``-Infinity``: Python extensions, not JSON.

Numbers keep their text. ``loads`` gives exact ``int``s, and floats as ``JsonFloat``, a ``float``
that remembers how it was written; ``canonical`` gives compact JSON text with every number exactly
as written (``98765432109876543210987654321`` stays that, not ``9.876543210987655e+28``).

Cost on a typical create body (212 bytes, 5 keys, its payload a 56-byte string), best of 5 of
``python -m timeit`` on the shared 2-core dev machine (noisy: repeated runs moved by ~30%):
body ``json.loads`` 3.2-4.0 us, ``loads`` 3.6-4.4 us; payload ``orjson`` loads+dumps 0.3-0.5 us,
``canonical`` 2.8-3.2 us. So about +3 us per create, ~1.5% of the 220 us of API CPU a create
costs (docs/benchmarks.md): the price of exact numbers and of the duplicate-key check, which
orjson cannot do. The depth check
is one C-speed count of ``[`` and ``{`` unless there are more of them than the limit; the
surrogate and NaN checks run only when a C-speed search finds one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import orjson

MAX_DEPTH = 64

Path = tuple[str | int, ...]


class JsonTextError(json.JSONDecodeError):
    """JSON the API refuses. A ``JSONDecodeError``, so FastAPI answers it with its 422 ``json_invalid``.

    Neither the message nor the exception keeps the document: it may be a payload.
    """

    def __init__(self, problem: str, path: Path = (), pos: int = 0) -> None:
        super().__init__(problem, "", pos)
        self.args = (problem,)
        self.problem = problem
        self.path = path

    def __str__(self) -> str:
        return self.problem


class JsonFloat(float):
    """A float parsed from JSON, with its text as written (``1.00000000000000000001``)."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonFloat:
        value = super().__new__(cls, text)
        value.text = text
        return value


class _NonFinite:
    """What ``NaN``/``Infinity`` parse to, until ``loads`` finds where they are and refuses them."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _quoted(key: str) -> str:
    # ASCII only, and short: the text goes into an answer and maybe a log; a key may be hostile.
    return json.dumps(key[:64] + ("..." if len(key) > 64 else ""))


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonTextError(f"duplicate key {_quoted(key)}")
            seen.add(key)
    return obj


def _number(text: str) -> float:
    # A plain float when it says exactly what was written (most do), else one that keeps the text.
    value = float(text)
    return value if repr(value) == text else JsonFloat(text)


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_float=_number, parse_constant=_NonFinite)
_EXACT_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_float=orjson.Fragment,
    parse_int=orjson.Fragment,
    parse_constant=_NonFinite,
)

# Strings, so that brackets inside them do not count as nesting (unrolled loop: no backtracking).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00"})
# A surrogate escape; after decoding, only unpaired ones are left as surrogate code points.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _nesting(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets in strings not counted)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_STEP).encode("latin-1")
    # Each opening bracket is +1 and each closing one -1: the deepest level is the highest sum.
    return max(accumulate(byte - 1 for byte in brackets), default=0)


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``JsonTextError`` if ``text`` nests deeper than ``max_depth`` levels."""
    if text.count("[") + text.count("{") <= max_depth:  # the usual case, at C speed
        return
    if _nesting(text) > max_depth:
        raise JsonTextError(f"nested deeper than {max_depth} levels")


def _walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every key and value in ``value``, with its path; keys come as ``(path, key)`` too."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), key
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index))


def _where(path: Path) -> str:
    return "at " + ".".join(_quoted(p) if isinstance(p, str) else str(p) for p in path) if path else ""


def _refuse_extensions(text: str, value: Any) -> None:
    """Refuse lone surrogates and ``NaN``/``Infinity``, naming where they are (rare: searched first)."""
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if not (surrogates or "NaN" in text or "Infinity" in text):  # str.find: faster than a regex
        return
    for path, item in _walk(value):
        if isinstance(item, _NonFinite):
            raise JsonTextError(f"{item.text} is not a JSON number {_where(path)}".strip(), path)
        if surrogates and isinstance(item, str) and _SURROGATE.search(item):
            raise JsonTextError(f"a string holds a lone UTF-16 surrogate escape {_where(path)}".strip(), path)


def _parse(data: bytes | str, decoder: json.JSONDecoder, max_depth: int) -> Any:
    # Only UTF-8 (RFC 8259, section 8.1), strictly: encoded surrogates are not UTF-8 either.
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    check_depth(text, max_depth)
    try:
        value = decoder.decode(text)
    except JsonTextError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonTextError(f"{exc.msg} at line {exc.lineno} column {exc.colno}", pos=exc.pos) from None
    except ValueError:  # an integer of more than 4,300 digits (sys.get_int_max_str_digits)
        raise JsonTextError("a number has too many digits") from None
    _refuse_extensions(text, value)
    return value


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The value of a JSON document, strictly parsed; ``JsonTextError`` if it is refused.

    ``UnicodeDecodeError`` if ``data`` is bytes that are not UTF-8.
    """
    return _parse(data, _DECODER, max_depth)


def canonical(data: bytes | str, max_depth: int = MAX_DEPTH) -> tuple[Any, str]:
    """The top-level value's type (an empty dict, list... stands for it) and compact JSON text of
    ``data`` with every number exactly as written; ``JsonTextError`` if it is refused."""
    value = _parse(data, _EXACT_DECODER, max_depth)
    return value, orjson.dumps(value).decode()


def _with_fragments(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _with_fragments(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_fragments(item) for item in value]
    if isinstance(value, JsonFloat):
        return orjson.Fragment(value.text)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value))  # orjson writes only 64-bit integers itself
    if isinstance(value, float) and not math.isfinite(value):
        raise JsonTextError(f"{value} is not a JSON number")
    return value


def dumps(value: Any) -> str:
    """Compact JSON text of a value ``loads`` gave, numbers as they were written."""
    try:
        return orjson.dumps(_with_fragments(value)).decode()
    except orjson.JSONEncodeError as exc:  # a lone surrogate or deep nesting built in Python
        raise JsonTextError(f"cannot be written as JSON: {exc}") from None
