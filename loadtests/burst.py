"""Burst benchmark for the pollers: N recurring reminders all due at once, P pollers drain them.

    .venv/bin/python -m loadtests.burst                      # 100,000 reminders, 1 poller, embedded servers
    .venv/bin/python -m loadtests.burst --n 10000 --pollers 2 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test --redis-url redis://127.0.0.1:6379/9

Without URLs (flags or REMINDERS_DATABASE_URL / REMINDERS_REDIS_URL) it starts the embedded
PostgreSQL and Redis under ``--data-dir`` (default ``.data/bench``) and stops them at the end.

Each run creates a fresh database ``bench_<random>`` on the server, migrates it, FLUSHES the Redis
database of the URL (give it a db number of its own, e.g. ``/9``), seeds N ``recurring`` reminders
due now (at the current whole second, as cron ticks are, or spread over ``--jitter`` seconds;
``--unaligned`` scatters them over microseconds, the worst case for the poller's next-fire cache),
starts P ``python -m poller`` processes and waits until ``queue:to_assistant`` holds N
events. It prints one JSON line on stdout (progress goes to stderr):

    {"n", "pollers", "batch_size", "seconds", "fires_per_second", "lag_p50_ms", "lag_p99_ms",
     "duplicates", "missing", ...}

``seconds`` runs from spawning the pollers (their start-up included) until the last event is in
Redis; ``lag`` is ``deliveries.sent_at - scheduled_for``, i.e. from the moment a reminder was due
until Redis confirmed its event. ``claim_lag`` is the same up to the claim (the event's
``triggered_at``). The database is dropped at the end unless ``--keep``. The exit status is 1 when
an event is duplicated or missing, a poller died, or the timeout passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import sys
import tempfile
import time
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import asyncpg
import orjson
import redis.asyncio as redis
from cryptography.fernet import Fernet

from core.cron import validate_cron, zone
from core.crypto import PayloadCipher
from core.migrate import upgrade
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from loadtests.procstat import (
    calibration_ms,
    cpu_seconds,
    machine_busy_ticks,
    parent,
    tree_cpu_seconds,
)
from loadtests.servers import admin, database_name, services, stop_processes, with_database

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Zones with a mix of offsets and DST rules, so the burst exercises more than one croniter path.
PREFERRED_ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Europe/London",
    "America/Sao_Paulo",
    "Asia/Kathmandu",
)
ASSISTANTS = 10
# Issue 7: a poller stays under this through the 1M burst.
POLLER_RSS_TARGET_MB = 150
LRANGE_CHUNK = 10_000
LLEN_SAMPLE_SECONDS = 0.01
_TICK_TIME = re.compile(r"next run at: [^)]*")

# One statement: generate_series beats any client-side COPY for rows the server can make itself.
# Due times are whole seconds by default, as real cron ticks are: rows sharing (cron, zone, due
# time) share one memoized next-fire computation in the poller, as they would in production.
# $7 (--unaligned) scatters them over microseconds instead (over at least one second), so every
# row pays for its own croniter call. Payloads are stored encrypted, as the API stores them: one
# token ($8, under key id $9) shared by every row, so seeding stays one statement. $10 (--diverse)
# gives each row its own 6-field expression (distinct for the first 604,800 rows), so no two rows
# share a next-fire computation: the worst case for the poller's cron work.
SEED_SQL = """
INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type, cron_expression,
                       timezone, payload_ciphertext, payload_key_id, status, next_run_at,
                       misfire_policy)
SELECT gen_random_uuid(), s.g, s.a, s.a, 'recurring',
       CASE WHEN $10
            THEN concat_ws(' ', s.g % 60, (s.g / 60) % 60, (s.g / 3600) % 24, '*', '*', (s.g / 86400) % 7)
            ELSE $2 END,
       ($3::text[])[1 + s.g % cardinality($3::text[])],
       $8::bytea, $9::text,
       'active',
       CASE WHEN $7 THEN now() + make_interval(secs => $4) - random() * make_interval(secs => greatest($5, 1))
            ELSE date_trunc('second', now()) + make_interval(secs => $4)
                 - make_interval(secs => floor(random() * $5)) END,
       'fire_once'
FROM (SELECT g, ($6::uuid[])[1 + g % cardinality($6::uuid[])] AS a
      FROM generate_series(1, $1::int) AS g) AS s
"""

# percentile_cont skips NULLs, so deliveries never confirmed by Redis do not pollute the lag.
LAG_SQL = """
SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM sent_at - scheduled_for)) AS pushed,
       percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP
           (ORDER BY extract(epoch FROM created_at - scheduled_for)) AS claimed,
       count(*) AS deliveries,
       count(*) FILTER (WHERE sent_at IS NULL) AS unsent
FROM deliveries
"""


class BenchError(RuntimeError):
    """The benchmark could not run (a server, the seed, or a poller failed)."""


@dataclass
class Options:
    """The command line, typed."""

    n: int
    pollers: int
    batch_size: int
    zones: int
    cron: str
    database_url: str | None
    redis_url: str | None
    timeout: float
    keep: bool
    lead: float
    jitter: float
    unaligned: bool
    diverse: bool
    target: float | None
    log_level: str
    settle: float
    data_dir: Path
    # The pollers' REMINDERS_PAYLOAD_KEYS: the environment's, else a fresh key for this run.
    payload_keys: str = field(
        default_factory=lambda: os.environ.get("REMINDERS_PAYLOAD_KEYS") or Fernet.generate_key().decode(),
        repr=False,
    )


@dataclass
class Drain:
    """What watching the queue saw, in seconds since the pollers were spawned."""

    last_event: float | None
    first_event: float | None
    length: int
    timed_out: bool


@dataclass
class PollerProcess:
    """One poller subprocess and the file its stderr (JSON log lines) goes to."""

    index: int
    process: asyncio.subprocess.Process
    log_path: Path
    log_file: IO[bytes] = field(repr=False)


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line; URLs fall back to the REMINDERS_* environment."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.burst",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=100_000, help="reminders to seed (default 100000)")
    parser.add_argument("--pollers", type=int, default=1, help="poller processes (default 1)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings.model_fields["batch_size"].default,
        help="REMINDERS_BATCH_SIZE (default: the service's)",
    )
    parser.add_argument("--zones", type=int, default=5, help="IANA time zones to spread over (default 5)")
    parser.add_argument("--cron", default="0 10 * * *", help='cron expression (default "0 10 * * *")')
    parser.add_argument("--database-url", default=os.environ.get("REMINDERS_DATABASE_URL") or None)
    parser.add_argument("--redis-url", default=os.environ.get("REMINDERS_REDIS_URL") or None)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the drain")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and Redis data")
    parser.add_argument(
        "--lead", type=float, default=0.0, help="seconds from seeding until the reminders are due (default 0)"
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="spread due times over this many seconds before now (default 0: one tick, like a 10:00 burst)",
    )
    parser.add_argument(
        "--unaligned",
        action="store_true",
        help="due times at random microseconds instead of whole seconds (worst case for the next-fire cache)",
    )
    parser.add_argument(
        "--diverse",
        action="store_true",
        help="a distinct 6-field cron expression per reminder instead of --cron (no shared next fires)",
    )
    parser.add_argument(
        "--target", type=float, default=None, help="fires per second to meet; reported with 'met'"
    )
    parser.add_argument(
        "--settle", type=float, default=2.0, help="keep the pollers running this long after the last event"
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the pollers' REMINDERS_LOG_LEVEL (default WARNING; INFO adds a log line per fire)",
    )
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "bench")
    args = parser.parse_args(argv)
    if args.n < 1 or args.pollers < 1 or args.batch_size < 1 or args.zones < 1:
        parser.error("--n, --pollers, --batch-size and --zones must be at least 1")
    if args.lead < 0 or args.jitter < 0 or args.settle < 0:
        parser.error("--lead, --jitter and --settle cannot be negative")
    return Options(
        n=args.n,
        pollers=args.pollers,
        batch_size=args.batch_size,
        zones=args.zones,
        cron=validate_cron(args.cron),
        database_url=args.database_url,
        redis_url=args.redis_url,
        timeout=args.timeout,
        keep=args.keep,
        lead=args.lead,
        jitter=args.jitter,
        unaligned=args.unaligned,
        diverse=args.diverse,
        target=args.target,
        log_level=args.log_level,
        settle=args.settle,
        data_dir=args.data_dir,
    )


def pick_zones(count: int) -> list[str]:
    """``count`` distinct IANA zones: the preferred mix first, then the rest alphabetically."""
    others = sorted(zoneinfo.available_timezones() - set(PREFERRED_ZONES))
    names = [*PREFERRED_ZONES, *others][:count]
    for name in names:
        zone(name)  # fail before seeding, not inside a poller
    return names


def log(message: str) -> None:
    """Progress for the human; stdout carries only the result line."""
    print(f"[burst] {message}", file=sys.stderr, flush=True)


async def create_database(server_url: str) -> str:
    """Create an empty ``bench_<random>`` database on the server; return its URL."""
    name = f"bench_{secrets.token_hex(4)}"
    await admin(server_url, f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


async def drop_database(server_url: str, database_url: str) -> None:
    """Drop the bench database (FORCE: a poller killed hard may leave a session behind)."""
    await admin(server_url, f'DROP DATABASE IF EXISTS "{database_name(database_url)}" WITH (FORCE)')


async def seed(conn: asyncpg.Connection, options: Options) -> None:
    """Insert N active recurring reminders due within the last ``jitter`` seconds (plus ``lead``).

    Due times are whole seconds unless ``--unaligned``; ANALYZE follows so the claim plans as it
    would on a table with statistics.
    """
    zones = pick_zones(options.zones)
    assistants = [uuid.uuid4() for _ in range(ASSISTANTS)]
    cipher = PayloadCipher([k.strip() for k in options.payload_keys.split(",") if k.strip()])
    token = cipher.encrypt('{"check_type":"daily_report","user_id":1,"report_id":"daily_1"}')
    await conn.execute(
        SEED_SQL,
        options.n,
        options.cron,
        zones,
        options.lead,
        options.jitter,
        assistants,
        options.unaligned,
        token,
        cipher.key_id,
        options.diverse,
    )
    # Fresh statistics, as a long-lived table would have, so the claim plans like production.
    await conn.execute("ANALYZE reminders")


async def start_pollers(
    options: Options, database_url: str, redis_url: str, log_dir: Path, pollers: list[PollerProcess]
) -> None:
    """Spawn the poller processes with the benchmark's settings, adding each to ``pollers``.

    Filled in place so that, if a later spawn fails, the caller still stops the earlier ones.
    """
    env = dict(os.environ)
    # Without credentials the REST sync tick returns at once, so only the claim path is measured.
    env.pop("REMINDERS_BOOTSTRAP_API_KEY", None)
    env.pop("REMINDERS_API_KEYS", None)
    env.update(
        REMINDERS_DATABASE_URL=database_url,
        REMINDERS_REDIS_URL=redis_url,
        REMINDERS_PAYLOAD_KEYS=options.payload_keys,
        REMINDERS_BATCH_SIZE=str(options.batch_size),
        REMINDERS_LOG_LEVEL=options.log_level,
        REMINDERS_LOG_FORMAT="json",
        REMINDERS_SYNC_INTERVAL="3600",
        # Nobody acks here: without this, a drain longer than the ack timeout (60 s; the 1M burst)
        # would also measure redeliveries of the first events.
        REMINDERS_ACK_TIMEOUT="3600",
        REMINDERS_POLL_INTERVAL="0.2",
        # No metrics server: two pollers would both try port 9100 (and a service already there).
        REMINDERS_METRICS_PORT="0",
    )
    for index in range(options.pollers):
        log_path = log_dir / f"poller-{index}.log"
        log_file = log_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "poller",
            cwd=PROJECT_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        pollers.append(PollerProcess(index, process, log_path, log_file))


async def watch(client: redis.Redis, pollers: list[PollerProcess], options: Options, started: float) -> Drain:
    """Sample LLEN until the queue holds N events, a poller dies, or the timeout passes."""
    first: float | None = None
    while True:
        length = int(await client.llen(EVENT_QUEUE))
        elapsed = time.monotonic() - started
        if length and first is None:
            first = elapsed
        if length >= options.n:
            return Drain(elapsed, first, length, timed_out=False)
        dead = [p for p in pollers if p.process.returncode is not None]
        if dead:
            raise BenchError(
                "; ".join(
                    f"poller {p.index} exited with {p.process.returncode} (log {p.log_path})" for p in dead
                )
            )
        if elapsed > options.timeout:
            return Drain(None, first, length, timed_out=True)
        await asyncio.sleep(LLEN_SAMPLE_SECONDS)


async def stop_pollers(pollers: list[PollerProcess]) -> None:
    """SIGTERM every poller (each finishes its batch); kill whatever is still up after 30 s."""
    await stop_processes([(f"poller {p.index}", p.process, p.log_file) for p in pollers], log)


def summarize_logs(pollers: list[PollerProcess]) -> list[str]:
    """Per poller: its exit code, how many log lines of each kind it wrote, and its first error.

    The log directory is temporary, so whatever explains a failure is shown now.
    """
    lines = []
    for p in pollers:
        kinds: Counter[str] = Counter()
        first_error: str | None = None
        other = 0
        for raw in p.log_path.read_bytes().splitlines():
            try:
                entry = orjson.loads(raw)
                # APScheduler's messages name each tick's time; fold them into one kind.
                message = _TICK_TIME.sub("next run at: ...", str(entry.get("event")))
                kinds[f"{entry.get('level')}:{message}"] += 1
                if first_error is None and entry.get("level") in ("error", "critical"):
                    first_error = raw.decode(errors="replace")
            except (orjson.JSONDecodeError, AttributeError):
                other += 1  # a traceback or a library printing plain text
        detail = ", ".join(f"{k} x{v}" for k, v in kinds.most_common()) or "no log lines"
        if other:
            detail += f", {other} non-JSON lines"
        lines.append(f"poller {p.index}: exit {p.process.returncode}; {detail}")
        if first_error is not None:
            lines.append(f"  first error: {first_error}")
        if p.process.returncode != 0:
            tail = p.log_path.read_text(errors="replace").splitlines()[-20:]
            lines.extend(f"  | {line}" for line in tail)
    return lines


async def read_events(client: redis.Redis) -> list[dict[str, Any]]:
    """Every event in the queue, in order, parsed (LRANGE in chunks keeps each reply small)."""
    length = int(await client.llen(EVENT_QUEUE))
    events: list[dict[str, Any]] = []
    for start in range(0, length, LRANGE_CHUNK):
        chunk: list[bytes | str] = await client.lrange(EVENT_QUEUE, start, start + LRANGE_CHUNK - 1)
        events.extend(orjson.loads(raw) for raw in chunk)
    return events


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory so far (VmHWM), in MB; None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def millis(seconds: float | None) -> float | None:
    """Seconds to milliseconds, rounded for the report."""
    return None if seconds is None else round(seconds * 1000, 1)


async def analyse(conn: asyncpg.Connection, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Duplicates, missing reminders and lag, from the events and the deliveries table."""
    # A redelivery (same event id, next attempt) is not a duplicate; the same attempt twice is.
    event_ids = Counter((str(e.get("event_id")), e.get("attempt")) for e in events)
    # Distinct occurrences per reminder: a repeated event is a duplicate, not a second fire.
    fired = Counter(
        reminder_id
        for reminder_id, _ in {
            (str(e.get("payload", {}).get("reminder_id")), str(e.get("event_id"))) for e in events
        }
    )
    seeded = {str(r["id"]) for r in await conn.fetch("SELECT id FROM reminders")}
    row = await conn.fetchrow(LAG_SQL)
    assert row is not None  # an aggregate without GROUP BY always returns a row
    pushed: list[float | None] = row["pushed"] or [None, None]
    claimed: list[float | None] = row["claimed"] or [None, None]
    return {
        "duplicates": sum(count - 1 for count in event_ids.values()),
        "redeliveries": sum(1 for _, attempt in event_ids if attempt != 1),
        "missing": len(seeded - fired.keys()),
        "lag_p50_ms": millis(pushed[0]),
        "lag_p99_ms": millis(pushed[1]),
        "claim_lag_p50_ms": millis(claimed[0]),
        "claim_lag_p99_ms": millis(claimed[1]),
        "events": len(events),
        # A reminder with two different events fired twice (only expected if the cron came round
        # again during the run); strays are events for reminders this run did not seed.
        "refired": sum(1 for rid, count in fired.items() if rid in seeded and count > 1),
        "strays": sum(1 for rid in fired if rid not in seeded),
        "deliveries": row["deliveries"],
        "unsent_deliveries": row["unsent"],
    }


async def bench(options: Options, server_url: str, redis_url: str) -> dict[str, Any]:
    """One full run against the given servers; returns the result line's fields."""
    database_url = await create_database(server_url)
    log(f"database {urlsplit(database_url).path.lstrip('/')} on {urlsplit(server_url).netloc}")
    client = redis.from_url(redis_url)
    pollers: list[PollerProcess] = []
    try:
        await asyncio.to_thread(upgrade, database_url)
        await client.flushdb()
        conn = await asyncpg.connect(database_url)
        try:
            began = time.monotonic()
            await seed(conn, options)
            took = time.monotonic() - began
            log(f"seeded {options.n} reminders in {took:.2f}s; starting {options.pollers} poller(s)")
            peak_rss: list[float | None] = []
            with tempfile.TemporaryDirectory(prefix="burst-") as log_dir:
                server_pids = await local_server_pids(conn, client)
                servers_cpu = {name: tree_cpu_seconds(pids) for name, pids in server_pids.items()}
                busy_before = machine_busy_ticks()
                started = time.monotonic()
                try:
                    await start_pollers(options, database_url, redis_url, Path(log_dir), pollers)
                    drain = await watch(client, pollers, options, started)
                    # Read while the pollers and their database sessions still live.
                    cpu = cpu_use(pollers, server_pids, servers_cpu, busy_before, options.n)
                    if not drain.timed_out:
                        # Anything pushed twice would typically land just after the last event.
                        await asyncio.sleep(options.settle)
                    peak_rss = [peak_rss_mb(p.process.pid) for p in pollers]
                finally:
                    await stop_pollers(pollers)
                    for line in summarize_logs(pollers):
                        log(line)
            events = await read_events(client)
            result = await analyse(conn, events)
        finally:
            await conn.close()
    finally:
        if not options.keep:
            with contextlib.suppress(redis.RedisError, OSError):
                await client.flushdb()  # the marker sets would linger for two days
            await drop_database(server_url, database_url)
        else:
            log(f"kept database {database_url}")
        await client.aclose()
    seconds = drain.last_event
    rate = None if not seconds else round(options.n / seconds, 1)
    return {
        "n": options.n,
        "pollers": options.pollers,
        "batch_size": options.batch_size,
        "seconds": None if seconds is None else round(seconds, 3),
        "fires_per_second": rate,
        "target": {"fires_per_second": options.target, "poller_rss_mb": POLLER_RSS_TARGET_MB},
        "met": (options.target is None or (rate is not None and rate >= options.target))
        and all(rss is not None and rss < POLLER_RSS_TARGET_MB for rss in peak_rss),
        "poller_peak_rss_mb": peak_rss,
        "diverse": options.diverse,
        "lag_p50_ms": result.pop("lag_p50_ms"),
        "lag_p99_ms": result.pop("lag_p99_ms"),
        "duplicates": result.pop("duplicates"),
        "missing": result.pop("missing"),
        "first_event_s": None if drain.first_event is None else round(drain.first_event, 3),
        "timed_out": drain.timed_out,
        "poller_exit_codes": [p.process.returncode for p in pollers],
        **cpu,
        "calibration_ms": calibration_ms(),
        **result,
    }


async def local_server_pids(conn: asyncpg.Connection, client: redis.Redis) -> dict[str, list[int]]:
    """The PostgreSQL postmaster and the Redis server process, by server, when they run here."""
    backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
    postmaster = parent(backend)
    redis_pid = int((await client.info("server"))["process_id"])
    return {
        "postgres": [postmaster] if postmaster is not None and _command(backend) == "postgres" else [],
        "redis": [redis_pid] if _command(redis_pid).startswith("redis") else [],
    }


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_use(
    pollers: list[PollerProcess],
    server_pids: dict[str, list[int]],
    servers_before: dict[str, float],
    busy_before: tuple[int, int],
    fires: int,
) -> dict[str, Any]:
    """CPU time per fire (µs) of the pollers and of the servers (Postgres, Redis) when they run
    here, and how busy the machine was (0..1), from the pollers' start to the last event."""
    busy, total = (after - before for after, before in zip(machine_busy_ticks(), busy_before, strict=True))
    pollers_cpu = sum(cpu_seconds(p.process.pid) for p in pollers)
    servers_cpu = {name: tree_cpu_seconds(pids) - servers_before[name] for name, pids in server_pids.items()}
    return {
        "cpu_us_per_fire": {
            "pollers": round(pollers_cpu / fires * 1e6, 1),
            **{name: round(seconds / fires * 1e6, 1) for name, seconds in servers_cpu.items()},
        },
        "machine_busy": round(busy / total, 3) if total else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the JSON line; 0 only if every reminder fired exactly once."""
    options = parse_args(argv)
    try:
        servers = services(options.database_url, options.redis_url, options.data_dir, log)
        with servers as (server_url, redis_url):
            result = asyncio.run(bench(options, server_url, redis_url))
    except BenchError as exc:
        log(f"failed: {exc}")
        return 2
    print(json.dumps(result), flush=True)
    clean = not result["timed_out"] and result["duplicates"] == 0 and result["missing"] == 0
    return 0 if clean and all(code == 0 for code in result["poller_exit_codes"]) else 1


if __name__ == "__main__":
    sys.exit(main())
