"""Idle-lag benchmark: how late does a lone one-time reminder reach Redis after its trigger_at?

    .venv/bin/python -m loadtests.idle_lag                   # 200 samples, embedded servers
    .venv/bin/python -m loadtests.idle_lag --samples 50 \\
        --database-url postgresql://postgres@127.0.0.1:5432/test --redis-url redis://127.0.0.1:6379/9

Without URLs (flags or REMINDERS_DATABASE_URL / REMINDERS_REDIS_URL) it starts the embedded
PostgreSQL and Redis under ``--data-dir`` (default ``.data/bench``) and stops them at the end.

Each run creates a fresh database ``bench_<random>`` on the server, migrates it, FLUSHES the Redis
database of the URL (give it a db number of its own, e.g. ``/9``), and starts the real API (uvicorn)
and one poller (``python -m poller``) as processes, with the default poll interval unless
``--poll-interval``. It then creates ``--samples`` one-time reminders through the API, one every
``--every`` seconds, each with a ``trigger_at`` 1-5 s ahead (``--min-lead``/``--max-lead``), so the
poller is idle, sleeping until the nearest fire, whenever one comes due. A consumer BLPOPs
``queue:to_assistant`` and records, per event, its receive time minus its trigger_at (one machine,
one clock). It prints one JSON line on stdout (progress goes to stderr):

    {"benchmark": "idle_lag", "samples", "p50_ms", "p99_ms", "max_ms", "target", "met", ...}

The exit status is 1 when an event is missing or duplicated, fired before its trigger_at, or a
process died; a missed latency target is reported by ``met`` only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson
import redis.asyncio as redis
from cryptography.fernet import Fernet

from core.migrate import upgrade
from core.redis_keys import EVENT_QUEUE
from loadtests.servers import admin, services, stop_processes, with_database

PROJECT_ROOT = Path(__file__).resolve().parent.parent

TARGET = {"p50_ms": 5.0, "p99_ms": 50.0}
ASSISTANT_ID = "00000000-0000-4000-8000-000000000001"
LISTEN_APPLICATION = "reminders-poller-listen"


class BenchError(RuntimeError):
    """The benchmark could not run (a server or a process failed)."""


@dataclass(frozen=True)
class Options:
    """The command line, typed."""

    samples: int
    every: float
    min_lead: float
    max_lead: float
    poll_interval: float | None
    database_url: str | None
    redis_url: str | None
    data_dir: Path
    keep: bool
    seed: int | None


@dataclass
class Service:
    """One child process (the API or the poller) and its log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    log_file: IO[bytes]


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Read the command line; URLs fall back to the REMINDERS_* environment."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.idle_lag",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--samples", type=int, default=200, help="reminders to time (default 200)")
    parser.add_argument(
        "--every", type=float, default=0.1, help="seconds between two creations (default 0.1)"
    )
    parser.add_argument("--min-lead", type=float, default=1.0, help="earliest trigger_at, seconds ahead")
    parser.add_argument("--max-lead", type=float, default=5.0, help="latest trigger_at, seconds ahead")
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="the poller's REMINDERS_POLL_INTERVAL (default: the service default)",
    )
    parser.add_argument("--database-url", default=os.environ.get("REMINDERS_DATABASE_URL") or None)
    parser.add_argument("--redis-url", default=os.environ.get("REMINDERS_REDIS_URL") or None)
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "bench")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and Redis data")
    parser.add_argument("--seed", type=int, default=None, help="random seed for the leads")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if args.every < 0 or not 0 < args.min_lead <= args.max_lead:
        parser.error("need --every >= 0 and 0 < --min-lead <= --max-lead")
    return Options(
        samples=args.samples,
        every=args.every,
        min_lead=args.min_lead,
        max_lead=args.max_lead,
        poll_interval=args.poll_interval,
        database_url=args.database_url,
        redis_url=args.redis_url,
        data_dir=args.data_dir,
        keep=args.keep,
        seed=args.seed,
    )


def log(message: str) -> None:
    """Progress for the human; stdout carries only the result line."""
    print(f"[idle_lag] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def start_services(
    options: Options, database_url: str, redis_url: str, api_key: str, log_dir: Path
) -> tuple[list[Service], str]:
    """The API and one poller as processes, the way `reminders up` runs them; returns the API URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env.update(
        REMINDERS_DATABASE_URL=database_url,
        REMINDERS_REDIS_URL=redis_url,
        REMINDERS_BOOTSTRAP_API_KEY=api_key,
        REMINDERS_PAYLOAD_KEYS=Fernet.generate_key().decode(),
        REMINDERS_API_URL=url,
        REMINDERS_LOG_FORMAT="json",
        # INFO would add a log line per request and per fire to the path being timed.
        REMINDERS_LOG_LEVEL="WARNING",
        REMINDERS_METRICS_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    if options.poll_interval is not None:
        env["REMINDERS_POLL_INTERVAL"] = str(options.poll_interval)
    commands = {
        "api": [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port)],
        "poller": [sys.executable, "-m", "poller"],
    }
    started: list[Service] = []
    for name, argv in commands.items():
        log_path = log_dir / f"{name}.log"
        log_file = log_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=PROJECT_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        started.append(Service(name, process, log_path, log_file))
    return started, url


async def wait_ready(services_: list[Service], api_url: str, database_url: str) -> None:
    """Until the API answers /healthz and the poller LISTENs (so every sample can wake it)."""
    deadline = time.monotonic() + 60
    conn = await asyncpg.connect(database_url)
    try:
        async with httpx.AsyncClient(base_url=api_url) as client:
            while True:
                check_alive(services_)
                if time.monotonic() > deadline:
                    raise BenchError("the API or the poller was not ready within 60 s")
                listening = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = $1 AND datname = current_database()",
                    LISTEN_APPLICATION,
                )
                try:
                    healthy = (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    healthy = False
                if healthy and listening:
                    return
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


def check_alive(services_: list[Service]) -> None:
    dead = [s for s in services_ if s.process.returncode is not None]
    if dead:
        raise BenchError(
            "; ".join(f"{s.name} exited with {s.process.returncode} (log {s.log_path})" for s in dead)
        )


async def stop_services(services_: list[Service]) -> None:
    """SIGTERM each process; kill whatever is still up after 30 s."""
    await stop_processes([(s.name, s.process, s.log_file) for s in services_], log)


async def create_all(
    options: Options, api_url: str, api_key: str, services_: list[Service]
) -> dict[str, datetime]:
    """Create the reminders, one every ``--every`` seconds; returns trigger_at by reminder id."""
    rng = random.Random(options.seed)
    triggers: dict[str, datetime] = {}
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with httpx.AsyncClient(base_url=api_url, headers={"X-API-Key": api_key}, timeout=10) as client:
        for index in range(options.samples):
            check_alive(services_)
            trigger_at = datetime.now(UTC) + timedelta(
                seconds=rng.uniform(options.min_lead, options.max_lead)
            )
            response = await client.post(
                "/reminders/",
                json={
                    "user_id": 1 + index,
                    "assistant_id": ASSISTANT_ID,
                    "type": "one_time",
                    "trigger_at": trigger_at.isoformat(),
                    "payload": "{}",
                },
            )
            if response.status_code != 201:
                raise BenchError(f"create failed: {response.status_code} {response.text[:200]}")
            triggers[str(response.json()["id"])] = trigger_at
            # On a fixed grid rather than a fixed gap, so slow requests do not stretch the run.
            await asyncio.sleep(max(0.0, began + (index + 1) * options.every - loop.time()))
    return triggers


async def consume(client: redis.Redis, expected: int, received: list[tuple[float, dict[str, Any]]]) -> None:
    """BLPOP events as they come, stamping each with our clock at receipt; runs until cancelled."""
    while len(received) < expected:
        popped = await client.blpop([EVENT_QUEUE], timeout=1)
        if popped is not None:
            received.append((time.time(), orjson.loads(popped[1])))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def analyse(
    options: Options, triggers: dict[str, datetime], received: list[tuple[float, dict[str, Any]]]
) -> dict[str, Any]:
    lags: list[float] = []
    # Due time to claim, both on the database clock: how much of the lag is waking up.
    claim_lags: list[float] = []
    seen: set[str] = set()
    duplicates = strays = 0
    for at, event in received:
        reminder_id = str(event.get("payload", {}).get("reminder_id"))
        if reminder_id not in triggers:
            strays += 1
            continue
        if reminder_id in seen:
            duplicates += 1
            continue
        seen.add(reminder_id)
        lags.append((at - triggers[reminder_id].timestamp()) * 1000)
        payload = event["payload"]
        claimed = datetime.fromisoformat(payload["triggered_at"]) - datetime.fromisoformat(
            payload["scheduled_for"]
        )
        claim_lags.append(claimed.total_seconds() * 1000)
    lags.sort()
    claim_lags.sort()
    result: dict[str, Any] = {"benchmark": "idle_lag", "samples": len(lags)}
    if lags:
        p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
        result.update(
            p50_ms=round(p50, 2),
            p99_ms=round(p99, 2),
            max_ms=round(lags[-1], 2),
            min_ms=round(lags[0], 2),
            claim_p50_ms=round(percentile(claim_lags, 0.5), 2),
            claim_p99_ms=round(percentile(claim_lags, 0.99), 2),
        )
        met = p50 <= TARGET["p50_ms"] and p99 <= TARGET["p99_ms"] and len(lags) == options.samples
    else:
        result.update(p50_ms=None, p99_ms=None, max_ms=None, min_ms=None)
        met = False
    result.update(
        target=TARGET,
        met=met,
        missing=len(triggers) - len(seen),
        duplicates=duplicates,
        strays=strays,
        early=sum(1 for lag in lags if lag < 0),
        poll_interval=options.poll_interval,
    )
    return result


async def bench(options: Options, server_url: str, redis_url: str) -> dict[str, Any]:
    """One full run against the given servers; returns the result line's fields."""
    name = f"bench_{secrets.token_hex(4)}"
    await admin(server_url, f'CREATE DATABASE "{name}"')
    database_url = with_database(server_url, name)
    log(f"database {name} on {urlsplit(server_url).netloc}")
    client = redis.from_url(redis_url)
    api_key = secrets.token_urlsafe(24)
    received: list[tuple[float, dict[str, Any]]] = []
    triggers: dict[str, datetime] = {}
    try:
        await asyncio.to_thread(upgrade, database_url)
        await client.flushdb()
        with tempfile.TemporaryDirectory(prefix="idle-lag-") as log_dir:
            services_, api_url = await start_services(
                options, database_url, redis_url, api_key, Path(log_dir)
            )
            try:
                await wait_ready(services_, api_url, database_url)
                log(f"API and poller up; creating {options.samples} reminders, one every {options.every}s")
                consumer = asyncio.create_task(consume(client, options.samples, received))
                try:
                    triggers = await create_all(options, api_url, api_key, services_)
                    # The last one is due at most max_lead after its creation; allow a margin.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(consumer), options.max_lead + 5)
                finally:
                    consumer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await consumer
                check_alive(services_)
            finally:
                await stop_services(services_)
                for s in services_:
                    for line in s.log_path.read_text(errors="replace").splitlines()[-5:]:
                        if '"error"' in line or "Traceback" in line:
                            log(f"{s.name}: {line}")
    finally:
        if not options.keep:
            with contextlib.suppress(redis.RedisError, OSError):
                await client.flushdb()
            await admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            log(f"kept database {database_url}")
        await client.aclose()
    return analyse(options, triggers, received)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the JSON line; 0 unless an event went missing, twice, or early."""
    options = parse_args(argv)
    try:
        servers = services(options.database_url, options.redis_url, options.data_dir, log)
        with servers as (server_url, redis_url):
            result = asyncio.run(bench(options, server_url, redis_url))
    except BenchError as exc:
        log(f"failed: {exc}")
        return 2
    print(json.dumps(result), flush=True)
    clean = result["missing"] == 0 and result["duplicates"] == 0 and result["early"] == 0
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
