"""The same burst fired by APScheduler 3.11 with its SQLAlchemy job store and by this service's poller.

    .venv/bin/python -m loadtests.apscheduler_compare                 # 20,000 jobs, embedded servers
    .venv/bin/python -m loadtests.apscheduler_compare --count 2000 --two-processes

APScheduler side: an ``AsyncIOScheduler`` (the docs' choice for asyncio applications, as this service
is) with ``SQLAlchemyJobStore(url=...)`` on a fresh ``bench_<random>`` database of the same
PostgreSQL server (its own table), a ``ThreadPoolExecutor`` and N jobs due at one whole second; each
job RPUSHes a small JSON event to ``bench:apscheduler:<random>``. The scheduler is started paused,
the jobs are added (timed apart as ``insert_seconds``), then it is resumed: ``seconds`` runs from the
later of the due moment and the resume until the N-th event is in Redis.

Reminders side: ``loadtests.burst.bench()`` with the same N and one poller process:
``seconds`` runs from spawning the poller (its start-up included) until the N-th event is in Redis.

Needs a synchronous PostgreSQL driver for SQLAlchemy (the service itself only uses asyncpg):
``.venv/bin/pip install 'psycopg[binary]'`` (psycopg2 or pg8000 also do). URLs and ``--data-dir``
work as in burst.py, which FLUSHES the Redis database of the URL. One JSON line goes to stdout;
``ratio`` is reminders over APScheduler events per second. Exit status: 0 when both sides fired
every job exactly once (``--two-processes`` expects duplicates and only checks nothing is missing),
1 otherwise, 2 when the benchmark could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import math
import os
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis

from loadtests import burst
from loadtests.servers import services

PROJECT_ROOT = Path(__file__).resolve().parent.parent

LIST_PREFIX = "bench:apscheduler:"
TABLE_NAME = "apscheduler_bench_jobs"
SAMPLE_SECONDS = 0.01
SYNC_DRIVERS = (
    ("psycopg", "postgresql+psycopg"),
    ("psycopg2", "postgresql+psycopg2"),
    ("pg8000", "postgresql+pg8000"),
)
FOLLOWER_READY = "ready"

# The job's Redis client and stop flag live at module level: APScheduler stores the job as a
# textual reference to push_event plus its arguments, so nothing unpicklable can ride along.
_client: redis.Redis | None = None
_stopped = threading.Event()


class CompareError(RuntimeError):
    """The comparison could not run (no driver, a server or the follower process failed)."""


@dataclass
class Options:
    """The command line, typed."""

    count: int
    timeout: float
    workers: int
    misfire_grace_time: float | None
    trigger: str
    lead: float
    settle: float
    batch_size: int
    two_processes: bool
    skip_reminders: bool
    database_url: str | None
    redis_url: str | None
    data_dir: Path


@dataclass
class Fired:
    """What the APScheduler run produced."""

    drain: burst.Drain
    insert_seconds: float
    late_release_s: float
    events: list[int]
    missed: int
    errors: int


def push_event(index: int, list_name: str) -> None:
    """The job: one small JSON event onto the benchmark's Redis list (a no-op once the run is over)."""
    if _stopped.is_set() or _client is None:
        return
    _client.rpush(list_name, orjson.dumps({"index": index, "fired_at": time.time()}))


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line; URLs fall back to REMINDERS_DATABASE_URL / REMINDERS_REDIS_URL."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.apscheduler_compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--count", type=int, default=20_000, help="jobs / reminders in the burst (default 20000)"
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds to wait for each side (default 120)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=20,
        help="APScheduler ThreadPoolExecutor size (default 20, the docs' example)",
    )
    parser.add_argument(
        "--misfire-grace-time",
        default="none",
        help='seconds a queued job may run late, or "none" for no limit (default none; APScheduler\'s is 1)',
    )
    parser.add_argument(
        "--trigger",
        choices=("cron", "date"),
        default="cron",
        help="cron: a daily CronTrigger first due at the burst second, updated after firing, like a recurring"
        " reminder (default); date: a DateTrigger, deleted after firing",
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=0.0,
        help="seconds from the start of the inserts to the due moment (default 0)",
    )
    parser.add_argument(
        "--settle", type=float, default=2.0, help="seconds to wait for duplicates after the last event"
    )
    parser.add_argument(
        "--batch-size", type=int, default=500, help="the poller's REMINDERS_BATCH_SIZE (default 500)"
    )
    parser.add_argument(
        "--two-processes",
        action="store_true",
        help="run a second APScheduler process on the same job store and count the jobs fired twice",
    )
    parser.add_argument("--skip-reminders", action="store_true", help="run only the APScheduler side")
    parser.add_argument("--database-url", default=os.environ.get("REMINDERS_DATABASE_URL") or None)
    parser.add_argument("--redis-url", default=os.environ.get("REMINDERS_REDIS_URL") or None)
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "bench")
    args = parser.parse_args(argv)
    if args.count < 1 or args.workers < 1 or args.batch_size < 1:
        parser.error("--count, --workers and --batch-size must be at least 1")
    if args.lead < 0 or args.settle < 0 or args.timeout <= 0:
        parser.error("--lead and --settle cannot be negative, --timeout must be positive")
    grace: float | None = None
    if args.misfire_grace_time.lower() != "none":
        try:
            grace = float(args.misfire_grace_time)
        except ValueError:
            parser.error('--misfire-grace-time takes seconds or "none"')
    return Options(
        count=args.count,
        timeout=args.timeout,
        workers=args.workers,
        misfire_grace_time=grace,
        trigger=args.trigger,
        lead=args.lead,
        settle=args.settle,
        batch_size=args.batch_size,
        two_processes=args.two_processes,
        skip_reminders=args.skip_reminders,
        database_url=args.database_url,
        redis_url=args.redis_url,
        data_dir=args.data_dir,
    )


def log(message: str) -> None:
    """Progress for the human; stdout carries only the result line."""
    print(f"[apscheduler_compare] {message}", file=sys.stderr, flush=True)


def sqlalchemy_url(database_url: str) -> str:
    """The libpq URL with a synchronous driver SQLAlchemy can use, as SQLAlchemyJobStore needs one."""
    for module, scheme in SYNC_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return urlsplit(database_url)._replace(scheme=scheme).geturl()
    raise CompareError(
        "SQLAlchemyJobStore needs a synchronous PostgreSQL driver;"
        " install one: .venv/bin/pip install 'psycopg[binary]'"
    )


def due_moment(lead: float) -> datetime:
    """The burst's due time: a whole second (as cron ticks are), ``lead`` seconds from now or just past."""
    now = datetime.now(UTC)
    if lead == 0:
        return now.replace(microsecond=0)
    return datetime.fromtimestamp(math.ceil(now.timestamp() + lead), UTC)


def make_scheduler(url: str, options: Options) -> Any:
    """An AsyncIOScheduler configured as the APScheduler 3.x user guide shows, on the bench table."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url, tablename=TABLE_NAME)},
        executors={"default": ThreadPoolExecutor(options.workers)},
        job_defaults={
            "coalesce": False,
            "max_instances": 1,
            "misfire_grace_time": options.misfire_grace_time,
        },
        timezone=UTC,
    )


def add_jobs(scheduler: Any, options: Options, due: datetime, list_name: str) -> None:
    """Add the N jobs one ``add_job`` at a time, the documented way (one INSERT each in the job store)."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.date import DateTrigger

    for index in range(options.count):
        if options.trigger == "cron":
            # next_run_time pins the first run to the burst second even if the inserts outlast it.
            trigger: Any = CronTrigger(hour=due.hour, minute=due.minute, second=due.second, timezone=UTC)
            extra: dict[str, Any] = {"next_run_time": due}
        else:
            trigger, extra = DateTrigger(run_date=due, timezone=UTC), {}
        scheduler.add_job(push_event, trigger, args=[index, list_name], id=f"burst-{index}", **extra)


def watch_list(
    client: redis.Redis, list_name: str, target: int, started: float, timeout: float
) -> burst.Drain:
    """Sample LLEN until it reaches ``target`` or ``timeout`` passes; times are seconds since ``started``.

    Runs in a thread because AsyncIOScheduler processes due jobs on the event loop, blocking it.
    """
    first: float | None = None
    while True:
        length = int(client.llen(list_name))
        elapsed = time.monotonic() - started
        if length and first is None:
            first = elapsed
        if length >= target:
            return burst.Drain(elapsed, first, length, timed_out=False)
        if elapsed > timeout:
            return burst.Drain(None, first, length, timed_out=True)
        time.sleep(SAMPLE_SECONDS)


def wait_quiet(client: redis.Redis, list_name: str, settle: float, deadline: float) -> None:
    """Return once the list has not grown for ``settle`` seconds, or at ``deadline`` (monotonic)."""
    length = -1
    while time.monotonic() < deadline:
        now = int(client.llen(list_name))
        if now == length:
            return
        length = now
        time.sleep(settle)


def read_indexes(client: redis.Redis, list_name: str) -> list[int]:
    """The job index of every event in the list, in order."""
    raw: list[bytes] = client.lrange(list_name, 0, -1)  # type: ignore[assignment]  # sync client
    return [int(orjson.loads(item)["index"]) for item in raw]


@contextlib.contextmanager
def follower(options: Options, url: str, redis_url: str) -> Iterator[None]:
    """A second APScheduler process on the same job store, stopped on exit."""
    import subprocess

    command = [sys.executable, "-m", "loadtests.apscheduler_compare", "--follower", url, redis_url]
    command += ["--workers", str(options.workers), "--misfire-grace-time", str(options.misfire_grace_time)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
    try:
        assert process.stdout is not None  # PIPE was asked for
        # A scheduler only learns its next wake-up from its own store reads, so it must start
        # after the inserts; it says when its first read is done.
        if process.stdout.readline().strip() != FOLLOWER_READY:
            raise CompareError(f"the follower APScheduler process failed (exit {process.poll()})")
        yield
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run_follower(url: str, redis_url: str, options: Options) -> None:
    """The ``--two-processes`` partner: the same scheduler on the same table, until SIGTERM."""
    global _client
    _client = redis.Redis.from_url(redis_url)
    scheduler = make_scheduler(url, options)
    scheduler.start()
    await asyncio.sleep(0.2)  # let the first wake-up (a call_soon) read the store
    print(FOLLOWER_READY, flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


async def run_apscheduler(options: Options, server_url: str, redis_url: str) -> Fired:
    """Insert N jobs into SQLAlchemyJobStore, release them at once and watch them arrive in Redis."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent

    global _client
    database_url = await burst.create_database(server_url)
    url = sqlalchemy_url(database_url)
    list_name = LIST_PREFIX + secrets.token_hex(4)
    client = redis.Redis.from_url(redis_url)
    _client = client
    _stopped.clear()
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def listener(event: JobExecutionEvent) -> None:
        # Called from the executor's threads, hence the lock.
        with lock:
            counts["missed" if event.code == EVENT_JOB_MISSED else "errors"] += 1

    scheduler = make_scheduler(url, options)
    scheduler.add_listener(listener, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    try:
        scheduler.start(paused=True)
        due = due_moment(options.lead)
        began = time.monotonic()
        await asyncio.to_thread(add_jobs, scheduler, options, due, list_name)
        insert_seconds = time.monotonic() - began
        log(f"APScheduler: added {options.count} jobs in {insert_seconds:.2f}s (due {due.isoformat()})")
        with contextlib.ExitStack() as stack:
            if options.two_processes:
                stack.enter_context(follower(options, url, redis_url))
            late = max(0.0, time.time() - due.timestamp())
            # The clock starts at the due moment, or at the resume if the inserts outlasted it.
            started = time.monotonic() + max(0.0, due.timestamp() - time.time())
            scheduler.resume()
            drain = await asyncio.to_thread(
                watch_list, client, list_name, options.count, started, options.timeout
            )
            if not drain.timed_out:
                # Duplicates would land just after the N-th event (all of them, with two processes).
                deadline = started + options.timeout
                await asyncio.to_thread(wait_quiet, client, list_name, options.settle, deadline)
        _stopped.set()
        events = read_indexes(client, list_name)
    finally:
        _stopped.set()
        if scheduler.running:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0.1)  # AsyncIOScheduler.shutdown runs as a loop callback
        with contextlib.suppress(redis.RedisError, OSError):
            client.delete(list_name)
        client.close()
        _client = None
        await burst.drop_database(server_url, database_url)  # the job table goes with it
    return Fired(drain, insert_seconds, late, events, counts["missed"], counts["errors"])


def rounded(value: float | None, digits: int = 3) -> float | None:
    """Round for the report, keeping None."""
    return None if value is None else round(value, digits)


def rate(count: int, seconds: float | None) -> float | None:
    """Events per second, or None if the drain never finished."""
    return None if not seconds else round(count / seconds, 1)


def drain_seconds(drain: burst.Drain) -> float | None:
    """First to last event: the firing alone, without start-up or wake-up."""
    if drain.last_event is None or drain.first_event is None:
        return None
    return drain.last_event - drain.first_event


def apscheduler_report(fired: Fired, options: Options) -> dict[str, Any]:
    """The ``apscheduler`` object of the result line."""
    per_job = Counter(fired.events)
    distinct = len(per_job)
    seconds = fired.drain.last_event
    drain = drain_seconds(fired.drain)
    return {
        "fired": distinct,
        "events": len(fired.events),
        "duplicates": len(fired.events) - distinct,
        "jobs_fired_twice_or_more": sum(1 for c in per_job.values() if c > 1),
        "missing": options.count - distinct,
        "missed_events": fired.missed,
        "job_errors": fired.errors,
        "seconds": rounded(seconds),
        "per_second": rate(options.count, seconds),
        "first_fire_after_s": rounded(fired.drain.first_event),
        "drain_seconds": rounded(drain),
        "drain_per_second": rate(options.count - 1, drain),
        "insert_seconds": rounded(fired.insert_seconds),
        "inserts_per_second": rate(options.count, fired.insert_seconds),
        "released_late_by_s": rounded(fired.late_release_s),
        "timed_out": fired.drain.timed_out,
        # fired counts the list at the end; this is what was there when the timeout hit.
        "in_redis_at_timeout": fired.drain.length if fired.drain.timed_out else None,
        "processes": 2 if options.two_processes else 1,
        "settings": {
            "scheduler": "AsyncIOScheduler",
            "jobstore": f"SQLAlchemyJobStore(url=..., tablename={TABLE_NAME!r})",
            "executor": f"ThreadPoolExecutor({options.workers})",
            "trigger": options.trigger,
            "misfire_grace_time": options.misfire_grace_time,
            "coalesce": False,
            "max_instances": 1,
        },
    }


def reminders_report(result: dict[str, Any], options: Options) -> dict[str, Any]:
    """The ``reminders`` object of the result line, from burst.bench()'s fields."""
    first = result["first_event_s"]
    seconds = result["seconds"]
    drain = None if seconds is None or first is None else seconds - first
    return {
        "fired": result["events"] - result["duplicates"],
        "duplicates": result["duplicates"],
        "missing": result["missing"],
        "seconds": seconds,
        "per_second": result["fires_per_second"],
        "first_fire_after_s": first,
        "drain_seconds": rounded(drain),
        "drain_per_second": rate(options.count - 1, drain),
        "lag_p50_ms": result["lag_p50_ms"],
        "lag_p99_ms": result["lag_p99_ms"],
        "timed_out": result["timed_out"],
        "pollers": result["pollers"],
        "batch_size": result["batch_size"],
    }


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """Reminders over APScheduler, or None when either side did not finish."""
    return None if not ours or not theirs else round(ours / theirs, 2)


def notes(options: Options, aps: dict[str, Any]) -> list[str]:
    """The caveats that go with the numbers."""
    grace = options.misfire_grace_time
    write = "UPDATE (its next daily run)" if options.trigger == "cron" else "DELETE"
    found = [
        "Both sides ran in this one run, one after the other (APScheduler first), on the same PostgreSQL"
        " and Redis servers, on a shared machine: the numbers move with its load.",
        "APScheduler: AsyncIOScheduler + SQLAlchemyJobStore over a synchronous driver; each due-jobs pass"
        f" runs on the event loop: one SELECT of all due jobs, then one {write} per job, each in its own"
        f" transaction; the jobs run in ThreadPoolExecutor({options.workers}).",
        (
            "misfire_grace_time=None: no limit, so no job queued behind the others is dropped; with"
            " APScheduler's default of 1 s, jobs waiting in the pool longer than that are skipped as missed."
            if grace is None
            else f"misfire_grace_time={grace}: jobs that waited longer were skipped (missed_events)."
        ),
        "coalesce=False and max_instances=1 change nothing for distinct jobs due once each.",
        "APScheduler's clock starts at the due moment in a warm process (imports done, engine made);"
        " the reminders clock starts when the poller process is spawned, so its seconds include Python"
        " start-up and connecting. drain_seconds (first to last event) and ratio_drain leave both out.",
        "Per event the APScheduler job only RPUSHes a small JSON line; the poller claims with SKIP LOCKED,"
        " decrypts the payload, writes a delivery row, advances the recurring reminder and pushes through"
        " its idempotent script, so it does more work per event.",
        "insert_seconds (N add_job calls: pickled job, one INSERT and commit each) is outside the ratio;"
        " burst.py seeds the reminders with one INSERT ... SELECT generate_series, not the API's path.",
        "APScheduler's loggers were set to ERROR (the poller runs at REMINDERS_LOG_LEVEL=WARNING), so"
        " neither side wrote a log line per job.",
        "The reminders side flushes the Redis database of the URL, as burst.py does.",
    ]
    if aps["released_late_by_s"]:
        # --lead 0 (the default) is burst.py's "due now": every job is overdue when the scheduler resumes.
        found.append(
            f"The jobs were due {aps['released_late_by_s']} s before the inserts ended and the scheduler"
            " resumed, so APScheduler's clock started at the resume with every job overdue, as the"
            " reminders are when the poller starts (--lead N: due N s after the inserts began)."
        )
    if options.two_processes:
        found.append(
            "Two APScheduler processes shared one job store: APScheduler 3 takes no claim or lock across"
            " processes, so both can read the same due jobs; duplicates counts the extra events. seconds"
            " ends at the N-th event, duplicates included, so per_second and the ratio mean little here."
        )
    if aps["timed_out"]:
        found.append(f"APScheduler did not fire all {options.count} jobs within {options.timeout} s.")
    return found


def burst_options(options: Options) -> burst.Options:
    """burst.py's options for the same N with one poller and this run's servers."""
    argv = ["--n", str(options.count), "--pollers", "1", "--batch-size", str(options.batch_size)]
    argv += [
        "--timeout",
        str(options.timeout),
        "--settle",
        str(options.settle),
        "--data-dir",
        str(options.data_dir),
    ]
    if options.database_url:
        argv += ["--database-url", options.database_url]
    if options.redis_url:
        argv += ["--redis-url", options.redis_url]
    return burst.parse_args(argv)


async def compare(options: Options, server_url: str, redis_url: str) -> dict[str, Any]:
    """Both sides against the same servers; returns the result line."""
    fired = await run_apscheduler(options, server_url, redis_url)
    aps = apscheduler_report(fired, options)
    took = "timed out" if aps["timed_out"] else f"in {aps['seconds']}s"
    log(f"APScheduler: {aps['fired']} fired, {aps['duplicates']} duplicates, {took}")
    ours: dict[str, Any] | None = None
    if not options.skip_reminders:
        ours = reminders_report(await burst.bench(burst_options(options), server_url, redis_url), options)
    return {
        "benchmark": "apscheduler_compare",
        "count": options.count,
        "apscheduler": aps,
        "reminders": ours,
        "ratio": ratio(ours["per_second"] if ours else None, aps["per_second"]),
        "ratio_drain": ratio(ours["drain_per_second"] if ours else None, aps["drain_per_second"]),
        "notes": notes(options, aps),
    }


def succeeded(result: dict[str, Any]) -> bool:
    """Every job fired, none twice (except by design with two processes), on both sides."""
    aps, ours = result["apscheduler"], result["reminders"]
    duplicates_ok = aps["processes"] == 2 or aps["duplicates"] == 0
    aps_ok = not aps["timed_out"] and aps["missing"] == 0 and duplicates_ok
    ours_ok = ours is None or (not ours["timed_out"] and ours["missing"] == 0 and ours["duplicates"] == 0)
    return aps_ok and ours_ok


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print its JSON line."""
    args = list(sys.argv[1:] if argv is None else argv)
    # Per-job INFO lines and per-miss warnings would dominate both the run and stderr.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    if args[:1] == ["--follower"]:
        url, redis_url, *rest = args[1:]
        asyncio.run(run_follower(url, redis_url, parse_args(rest)))
        return 0
    options = parse_args(args)
    try:
        # Driver check first: nothing is started or created without one.
        sqlalchemy_url("postgresql://localhost/check")
        servers = services(options.database_url, options.redis_url, options.data_dir, log)
        with servers as (server_url, redis_url):
            result = asyncio.run(compare(options, server_url, redis_url))
    except (CompareError, burst.BenchError) as exc:
        log(f"failed: {exc}")
        return 2
    print(orjson.dumps(result).decode(), flush=True)
    return 0 if succeeded(result) else 1


if __name__ == "__main__":
    sys.exit(main())
