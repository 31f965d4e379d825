"""Named SQL queries from ``sql/*.sql``, parsed once.

A file holds queries under headers ``-- name: some_query``; the comment lines right after the
header describe it, and the query runs until the next header. Call sites say
``queries["claim_due"]``.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_HEADER = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split one .sql file into ``{name: query}``."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        sql = "\n".join(lines).strip().rstrip(";").strip()
        if not sql:
            raise ValueError(f"query {name!r} is empty")
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = sql
    return queries


@cache
def load_queries(sql_dir: Path = SQL_DIR) -> dict[str, str]:
    """Every named query of every file in ``sql_dir``; names are unique across files."""
    queries: dict[str, str] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        for name, sql in parse_queries(path.read_text()).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = sql
    return queries


queries = load_queries()
