"""Flat poll cost (issue 7, target 4): claiming a batch of due reminders costs the same at any table size.

    .venv/bin/python -m loadtests.flat_cost                  # 10,000 vs 1,000,000 stored reminders
    .venv/bin/python -m loadtests.flat_cost --full           # 10,000 vs 10,000,000
    .venv/bin/python -m loadtests.flat_cost --large 200000 --database-url postgresql://postgres@127.0.0.1:5432/x

Without ``--database-url`` (or REMINDERS_DATABASE_URL) it starts the embedded PostgreSQL under
``--data-dir`` (default ``.data/flat_cost``) and stops it at the end.

For each size it creates a fresh database ``bench_flat_<rows>_<random>``, migrates it to head and
bulk-loads the rows with ``INSERT ... SELECT FROM generate_series`` in chunks, the table's real
indexes in place: 90 % active with ``next_run_at`` over the coming year, 10 % paused (next run in
the past year) or completed (no next run), and exactly ``--due`` active rows already due, spread
over the whole heap. Then VACUUM ANALYZE.

The claim is the poller's own ``claim_due`` query (core.queries), run with ``now`` NULL and LIMIT
``--batch`` inside a transaction that is rolled back, so every repetition claims the same rows.
Repetitions alternate between the two databases, so load from other processes hits both alike.
``EXPLAIN (ANALYZE, BUFFERS)`` of the claim (custom and generic plan) tells whether it scans a
partial index of the table; the indexes are read from the database, not assumed.

stdout carries one JSON line per size and a summary line::

    {"benchmark": "flat_cost", "small": {...}, "large": {...}, "ratio": ..., "target": {...}, "met": ...}

The exit status is 0 when the large/small median ratio is within the target and the large table's
claim scans a partial index (a 10,000-row table is rightly scanned whole), 1 otherwise, 2 when the
benchmark could not run. The databases are dropped unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet

from core.crypto import PayloadCipher
from core.migrate import upgrade
from core.queries import queries
from loadtests.servers import admin, database_name, postgres, with_database

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SMALL_ROWS = 10_000
DEFAULT_LARGE_ROWS = 1_000_000
FULL_LARGE_ROWS = 10_000_000
RATIO_MAX = 1.5
# Rows per INSERT: small enough to report progress on a 10M load, big enough that per-statement
# overhead does not matter.
LOAD_CHUNK = 1_000_000
ASSISTANTS = 10
CRON = "0 10 * * *"
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney")
PLAN_LINES = 8

# Row g of 1..$2 (this chunk is $1..$3): every ($2 / $4)-th row, up to $4 of them, is an active row
# already due (within the last hour), so the due rows lie scattered over the whole heap as in a
# table that has lived; of the rest, 1 in 20 is paused (its next run somewhere in the past year, so
# a plain next_run_at index would have to step over it) and 1 in 20 completed (next_run_at NULL, as
# the poller leaves it); everything else is active and due within the coming year, in random order.
# Ids are random UUIDs, as the API makes them. Payloads are stored encrypted, as the API stores
# them: one token shared by every row keeps the load a single statement per chunk.
LOAD_SQL = """
INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type, cron_expression,
                       timezone, payload_ciphertext, payload_key_id, status, next_run_at)
SELECT gen_random_uuid(), 1 + s.g / 3, s.a, s.a, 'recurring', $5::text,
       ($6::text[])[1 + s.g % cardinality($6::text[])],
       $8::bytea, $9::text,
       CASE WHEN s.due THEN 'active' WHEN s.g % 20 = 7 THEN 'paused'
            WHEN s.g % 20 = 17 THEN 'completed' ELSE 'active' END,
       CASE WHEN s.due THEN now() - random() * interval '1 hour'
            WHEN s.g % 20 = 7 THEN now() - interval '1 hour' - random() * interval '365 days'
            WHEN s.g % 20 = 17 THEN NULL
            ELSE now() + interval '1 hour' + random() * interval '365 days' END
FROM (SELECT g, ($7::uuid[])[1 + g % cardinality($7::uuid[])] AS a,
             g % ($2::bigint / $4) = 0 AND g / ($2::bigint / $4) <= $4 AS due
      FROM generate_series($1::bigint, $3::bigint) AS g) AS s
"""

# Every index of the table, with its predicate (NULL unless it is partial).
INDEXES_SQL = """
SELECT c.relname AS name, pg_get_expr(i.indpred, i.indrelid) AS predicate,
       pg_relation_size(i.indexrelid) AS bytes
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE i.indrelid = 'reminders'::regclass
ORDER BY c.relname
"""

COUNTS_SQL = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE status IN ('pending', 'active') AND next_run_at <= now()) AS due,
       count(*) FILTER (WHERE status NOT IN ('pending', 'active')) AS inactive,
       pg_total_relation_size('reminders') AS bytes
FROM reminders
"""

INDEX_SCANS = ("Index Scan", "Index Only Scan")


class BenchError(RuntimeError):
    """The benchmark could not run (the server, the load, or the claim failed)."""


@dataclass
class Options:
    """The command line, typed."""

    small: int
    large: int
    batch: int
    due: int
    repeat: int
    warmup: int
    database_url: str | None
    keep: bool
    data_dir: Path


@dataclass
class Size:
    """One database under test and what was measured on it."""

    label: str
    rows: int
    url: str
    load_seconds: float = 0.0
    samples: list[float] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line; the server URL falls back to REMINDERS_DATABASE_URL."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.flat_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument(
        "--large",
        type=int,
        default=DEFAULT_LARGE_ROWS,
        help=f"rows in the large table (default {DEFAULT_LARGE_ROWS})",
    )
    sizes.add_argument(
        "--full", action="store_const", const=FULL_LARGE_ROWS, dest="large", help=f"--large {FULL_LARGE_ROWS}"
    )
    parser.add_argument(
        "--small", type=int, default=SMALL_ROWS, help=f"rows in the small table (default {SMALL_ROWS})"
    )
    parser.add_argument(
        "--batch", type=int, default=500, help="claim LIMIT, the poller's batch size (default 500)"
    )
    parser.add_argument("--due", type=int, default=None, help="rows due in each table (default 2 x --batch)")
    parser.add_argument("--repeat", type=int, default=50, help="measured claims per size (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured claims per size first (default 5)")
    parser.add_argument("--database-url", default=os.environ.get("REMINDERS_DATABASE_URL") or None)
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "flat_cost")
    args = parser.parse_args(argv)
    due = 2 * args.batch if args.due is None else args.due
    if min(args.batch, args.repeat) < 1 or args.warmup < 0:
        parser.error("--batch and --repeat must be at least 1, --warmup not negative")
    if due < args.batch:
        parser.error("--due must be at least --batch, or the claim returns fewer rows than it asks for")
    if not due <= args.small <= args.large:
        parser.error("need --due <= --small <= --large")
    return Options(
        small=args.small,
        large=args.large,
        batch=args.batch,
        due=due,
        repeat=args.repeat,
        warmup=args.warmup,
        database_url=args.database_url,
        keep=args.keep,
        data_dir=args.data_dir,
    )


def log(message: str) -> None:
    """Progress for the human; stdout carries only the result lines."""
    print(f"[flat_cost] {message}", file=sys.stderr, flush=True)


async def load(conn: asyncpg.Connection, size: Size, options: Options) -> None:
    """Fill the table in chunks of LOAD_CHUNK rows, then VACUUM ANALYZE it."""
    cipher = PayloadCipher([Fernet.generate_key().decode()])
    token = cipher.encrypt('{"check_type":"daily_report","user_id":1,"report_id":"daily_1"}')
    assistants = [uuid.uuid4() for _ in range(ASSISTANTS)]
    began = time.monotonic()
    for first in range(1, size.rows + 1, LOAD_CHUNK):
        last = min(first + LOAD_CHUNK - 1, size.rows)
        await conn.execute(
            LOAD_SQL, first, size.rows, last, options.due, CRON, list(ZONES), assistants, token, cipher.key_id
        )
        if size.rows > LOAD_CHUNK:
            log(f"{size.label}: {last:,}/{size.rows:,} rows in {time.monotonic() - began:.1f}s")
    inserted = time.monotonic() - began
    # Visibility map and statistics as a table the autovacuum keeps up with would have them.
    await conn.execute("VACUUM ANALYZE reminders")
    size.load_seconds = time.monotonic() - began
    counts = await conn.fetchrow(COUNTS_SQL)
    assert counts is not None  # an aggregate without GROUP BY always returns a row
    if counts["total"] != size.rows or counts["due"] != options.due:
        raise BenchError(f"{size.label}: loaded {counts['total']} rows with {counts['due']} due, wanted "
                         f"{size.rows} with {options.due}")  # fmt: skip
    size.facts.update(
        insert_seconds=round(inserted, 2),
        due_rows=counts["due"],
        inactive_rows=counts["inactive"],
        table_mb=round(counts["bytes"] / 2**20, 1),
    )
    log(f"{size.label}: {size.rows:,} rows loaded in {size.load_seconds:.1f}s "
        f"(insert {inserted:.1f}s, vacuum analyze {size.load_seconds - inserted:.1f}s), "
        f"{size.facts['table_mb']} MB with indexes")  # fmt: skip


async def prepare(server_url: str, size: Size, options: Options) -> asyncpg.Connection:
    """Create, migrate and load the size's database; return a connection to it."""
    await admin(server_url, f'CREATE DATABASE "{database_name(size.url)}"')
    log(f"{size.label}: database {database_name(size.url)}; migrating")
    await asyncio.to_thread(upgrade, size.url)
    conn = await asyncpg.connect(size.url)
    try:
        await load(conn, size, options)
    except BaseException:
        await conn.close()
        raise
    return conn


async def claim_ms(conn: asyncpg.Connection, batch: int) -> float:
    """One claim of ``batch`` rows, rolled back so they stay due; the query's wall time in ms.

    ``fetch`` goes through asyncpg's statement cache, as the poller's does, so after a few runs the
    server may switch to the generic plan, as it would in the poller.
    """
    tr = conn.transaction()
    await tr.start()
    try:
        began = time.perf_counter()
        rows = await conn.fetch(queries["claim_due"], None, batch)
        took = (time.perf_counter() - began) * 1000
    finally:
        await tr.rollback()
    if len(rows) != batch:
        raise BenchError(f"the claim returned {len(rows)} rows, expected {batch}")
    return took


def index_scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every Index Scan / Index Only Scan node of a JSON plan, depth first."""
    if node.get("Node Type") in INDEX_SCANS:
        yield node
    for child in node.get("Plans", []):
        yield from index_scans(child)


async def explain(conn: asyncpg.Connection, batch: int, generic: bool) -> tuple[dict[str, Any], list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim, as JSON and as text; rolled back like the claim."""
    plan_json: dict[str, Any] = {}
    text: list[str] = []
    tr = conn.transaction()
    await tr.start()
    try:
        if generic:
            # The plan the poller's cached statement may settle on once the server stops re-planning.
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        raw = await conn.fetchval(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {queries['claim_due']}", None, batch
        )
        plan_json = (json.loads(raw) if isinstance(raw, str) else raw)[0]
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {queries['claim_due']}", None, batch)
        text = [r[0] for r in rows]
    finally:
        await tr.rollback()
    return plan_json, text


async def inspect(conn: asyncpg.Connection, size: Size, options: Options) -> None:
    """Record which index the claim scans (custom and generic plan) and whether it is partial."""
    indexes = {r["name"]: r for r in await conn.fetch(INDEXES_SQL)}
    partial = {name for name, r in indexes.items() if r["predicate"] is not None}
    log(
        f"{size.label}: indexes on reminders: "
        + ", ".join(f"{n}{' WHERE ' + r['predicate'] if r['predicate'] else ''}" for n, r in indexes.items())
    )
    verdicts: dict[str, Any] = {}
    for generic in (False, True):
        kind = "generic" if generic else "custom"
        plan, text = await explain(conn, options.batch, generic)
        used = [n["Index Name"] for n in index_scans(plan["Plan"]) if n.get("Relation Name") == "reminders"]
        uses_partial = bool(used) and all(name in partial for name in used)
        verdicts[kind] = {"index": used[0] if used else None, "uses_partial_index": uses_partial}
        if not generic:
            top = plan["Plan"]
            size.facts.update(
                explain_ms=round(plan["Execution Time"], 3),
                plan_ms=round(plan["Planning Time"], 3),
                shared_hit=top.get("Shared Hit Blocks"),
                shared_read=top.get("Shared Read Blocks"),
            )
        log(
            f"{size.label}: EXPLAIN (ANALYZE, BUFFERS), {kind} plan"
            f" - {'uses' if uses_partial else 'does NOT use'} a partial index ({', '.join(used) or 'none'}):"
        )
        for line in text[:PLAN_LINES]:
            log(f"    {line}")
    index = verdicts["custom"]["index"]
    size.facts.update(
        uses_partial_index=verdicts["custom"]["uses_partial_index"],
        generic_plan_uses_partial_index=verdicts["generic"]["uses_partial_index"],
        index=index,
        index_mb=round(indexes[index]["bytes"] / 2**20, 1) if index in indexes else None,
    )


def summary(size: Size) -> dict[str, Any]:
    """The size's result fields, milliseconds rounded to microseconds."""
    ordered = sorted(size.samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "rows": size.rows,
        "claim_ms_median": round(statistics.median(ordered), 3),
        "claim_ms_p95": round(p95, 3),
        "claim_ms_min": round(ordered[0], 3),
        "uses_partial_index": size.facts.pop("uses_partial_index"),
        "load_seconds": round(size.load_seconds, 2),
        **size.facts,
    }


async def bench(options: Options, server_url: str) -> dict[str, Any]:
    """Load both sizes, measure the claim on each alternately; the summary line's fields."""
    tag = secrets.token_hex(3)
    sizes = [
        Size(label, rows, with_database(server_url, f"bench_flat_{rows}_{tag}"))
        for label, rows in (("small", options.small), ("large", options.large))
    ]
    conns: list[asyncpg.Connection] = []
    try:
        for size in sizes:
            conns.append(await prepare(server_url, size, options))
        log(f"claiming {options.batch} rows: {options.warmup} warm-ups, then {options.repeat} measured each")
        for _ in range(options.warmup):
            for conn in conns:
                await claim_ms(conn, options.batch)
        # After the warm-ups, so the plan's buffer counts show the steady state, not the cache after loading.
        for size, conn in zip(sizes, conns, strict=True):
            await inspect(conn, size, options)
        for _ in range(options.repeat):
            # Alternating sizes spreads whatever else runs on the machine evenly over both.
            for size, conn in zip(sizes, conns, strict=True):
                size.samples.append(await claim_ms(conn, options.batch))
    finally:
        for conn in conns:
            await conn.close()
        for size in sizes:
            if options.keep:
                log(f"kept database {database_name(size.url)}")
            else:
                await admin(server_url, f'DROP DATABASE IF EXISTS "{database_name(size.url)}" WITH (FORCE)')
    small, large = (summary(size) for size in sizes)
    for label, result in (("small", small), ("large", large)):
        print(json.dumps({"benchmark": "flat_cost", "size": label, **result}), flush=True)
    ratio = large["claim_ms_median"] / small["claim_ms_median"]
    return {
        "benchmark": "flat_cost",
        "small": small,
        "large": large,
        "ratio": round(ratio, 3),
        "target": {"ratio_max": RATIO_MAX},
        # Only the large plan has to use the index: a 10,000-row table fits in a few hundred pages,
        # where the planner rightly prefers a sequential scan and a sort.
        "met": ratio <= RATIO_MAX and large["uses_partial_index"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the JSON lines; 0 only if the target is met."""
    options = parse_args(argv)
    try:
        with postgres(options.database_url, options.data_dir, log) as server_url:
            result = asyncio.run(bench(options, server_url))
    except (BenchError, asyncpg.PostgresError, OSError) as exc:
        log(f"failed: {exc}")
        return 2
    print(json.dumps(result), flush=True)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
