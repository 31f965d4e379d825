"""Named SQL queries from ``sql/*.sql``, parsed once.

A file holds queries under headers ``-- name: some_query``; the comment lines right after the
header describe it, and the query runs until the next header. A query spells its parameters
either as ``$1, $2, ...`` (call sites say ``queries["claim_due"]`` and pass them in order) or by
name, ``:ids``: those are turned into ``$n`` once, here, and ``named["record_fires"].args(params)``
takes them from a frozen dataclass whose fields carry the same names. ``::type`` casts, quoted
text ('...', "...") and ``--`` comments are never taken for a name; a query with named parameters
may not use what this scanner does not read (dollar quotes, block comments, E'' strings, array
slices with a colon): it fails at load rather than being rewritten wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from operator import attrgetter
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
# Quoted text, a quoted identifier and a comment, kept as they are; else a named parameter: a colon
# not part of a ``::`` cast, then a name.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|(?<![:\w]):([A-Za-z_]\w*)")
# What the scanner above cannot tell apart from a parameter or from the end of quoted text.
_UNREAD = re.compile(r"\$\$|/\*|\[[^\]]*:")
_ESCAPE_STRING = re.compile(r"\bE'", re.IGNORECASE)
_POSITIONAL = re.compile(r"\$\d")


@dataclass(frozen=True, slots=True)
class Query:
    """One named query: its SQL with ``$n`` placeholders, and the names they stand for, in order."""

    name: str
    sql: str
    params: tuple[str, ...] = ()

    def args(self, params: object) -> tuple[Any, ...]:
        """The positional arguments of this query, read from ``params``' fields of the same names
        (or its keys, for a mapping)."""
        if isinstance(params, Mapping):
            return tuple(params[name] for name in self.params)
        values: tuple[Any, ...] = _getter(self.params)(params)
        return values

    def check(self, params_type: type) -> None:
        """Raise unless ``params_type`` is a dataclass with exactly this query's parameters as fields."""
        if not is_dataclass(params_type):
            raise TypeError(f"{params_type.__name__} is not a dataclass")
        names = {f.name for f in fields(params_type)}
        if names != set(self.params):
            missing, extra = set(self.params) - names, names - set(self.params)
            raise TypeError(
                f"{params_type.__name__} does not match query {self.name!r}:"
                f" missing {sorted(missing)}, not in the query {sorted(extra)}"
            )


@cache
def _getter(names: tuple[str, ...]) -> Any:
    # attrgetter of several names returns a tuple in one C call: a claim binds 14 arrays per batch.
    if len(names) == 1:
        single = attrgetter(names[0])
        return lambda params: (single(params),)
    return attrgetter(*names)


def to_positional(name: str, sql: str) -> Query:
    """``sql`` with each ``:name`` replaced by ``$n`` (the same name, the same n)."""
    order: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        param = match.group(1)
        if param is None:
            return match.group(0)
        return f"${order.setdefault(param, len(order) + 1)}"

    converted = _TOKEN.sub(replace, sql)
    if order:
        code = _TOKEN.sub(lambda m: "" if m.group(1) is None else m.group(0), sql)
        if _POSITIONAL.search(code):
            raise ValueError(f"query {name!r} mixes $n and :name parameters")
        if _UNREAD.search(code) or _ESCAPE_STRING.search(sql):
            raise ValueError(
                f"query {name!r} has named parameters and a construct core/queries.py does not read"
            )
    return Query(name, converted, tuple(order))


def parse_queries(text: str) -> dict[str, Query]:
    """Split one .sql file into ``{name: query}``."""
    parts = _HEADER.split(text)
    queries: dict[str, Query] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if not sql:
            raise ValueError(f"query {name!r} is empty")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = to_positional(name, sql)
    return queries


@cache
def load_queries(sql_dir: Path = SQL_DIR) -> dict[str, Query]:
    """Every named query of every file in ``sql_dir``; names are unique across files."""
    loaded: dict[str, Query] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        for name, query in parse_queries(path.read_text()).items():
            if name in loaded:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            loaded[name] = query
    return loaded


named = load_queries()
# The SQL of each query, for the call sites that pass $n parameters in order.
queries = {name: query.sql for name, query in named.items()}
