"""REST API benchmark: the API as a real process, locust headless, creates then reads.

    .venv/bin/python -m loadtests.api_bench                        # embedded servers, 30 s per phase
    .venv/bin/python -m loadtests.api_bench --duration 20 --users 32 --processes 2 --workers 2 \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres --redis-url redis://127.0.0.1:6379/9

Without URLs (flags or REMINDERS_DATABASE_URL / REMINDERS_REDIS_URL) it starts the embedded
PostgreSQL and Redis under ``--data-dir`` (default ``.data/api-bench``; not burst.py's, whose Redis
it would stop) and stops them at the end.

Each run creates a fresh database ``bench_api_<random>``, migrates it and starts the API with the
command line ``reminders up`` uses (``cli.up.api_command``: uvloop, httptools, ``--workers``, by
default one worker per CPU, ``REMINDERS_API_WORKERS`` or ``--workers`` to change it), at log level
WARNING unless ``--log-level`` (INFO adds a JSON access line per request: about a third more API CPU
per create, as measured on a 2-core machine), with the rate limit off
(``REMINDERS_RATE_LIMIT_PER_SECOND=0``: one credential is every user here) and a random bootstrap
key. Then two locust phases (``loadtests/locustfile.py``, ``LOCUST_SCENARIO``):

1. ``create``: every user only POSTs reminders (one-time and recurring, 2:1, as the mixed scenario);
2. ``get``: every user only GETs reminders made in phase 1 (their ids passed in a file).

Users wait for nothing between requests, so the request rate is what the stack sustains with
``--users`` requests in flight. Stats are reset once all users run (``--reset-stats``), so the
ramp-up is not counted. It prints one JSON line per phase on stdout (progress goes to stderr):

    {"benchmark": "api_create", "rps", "p50_ms", "p99_ms", "requests", "failures", "rss_mb",
     "target": {"rps": 2500, "p99_ms": 50, "rss_mb": 200}, "met": bool, ...}

``rss_mb`` is the largest resident set of any one API process (a uvicorn worker, or the single
process), sampled every half second during the phase; ``api_cpu_ms_per_request`` the API processes'
CPU time (user + system) per request, and ``machine_busy`` the share of all CPUs busy (0..1) during
the phase: Postgres, Redis and locust share this machine, so these tell what limited the rate. The
exit status is 1 if a target was missed or locust failed, 2 if the benchmark could not run.

``--tool wrk`` drives the same two phases with wrk (``apt-get install wrk``) instead of locust:
``--processes`` wrk threads, ``--users`` connections, the same bodies (a Lua script) and the same
JSON lines (``"tool": "wrk"``; its p50/p99 are wrk's, in ms). Locust spends about as much CPU per
request as the API does here, on the same cores; wrk a small fraction of that, so the API's share
of the machine, and the rate, are then the API's own. Locust stays the default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography.fernet import Fernet

from cli.up import api_command
from core.migrate import upgrade
from core.settings import Settings
from loadtests.procstat import children, cpu_seconds, machine_busy_ticks
from loadtests.servers import admin, services, with_database

PROJECT_ROOT = Path(__file__).resolve().parent.parent

LOCUSTFILE = PROJECT_ROOT / "loadtests" / "locustfile.py"
TARGETS: dict[str, dict[str, float]] = {
    "api_create": {"rps": 2500, "p99_ms": 50, "rss_mb": 200},
    "api_get": {"rps": 4000, "p99_ms": 50, "rss_mb": 200},
}
# The get phase reads a random sample of this many ids created in the create phase.
GET_IDS = 20_000
RSS_SAMPLE_SECONDS = 0.5


class BenchError(RuntimeError):
    """The benchmark could not run (a process died, the API never answered...)."""


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    duration: int
    users: int
    processes: int
    workers: int
    database_url: str | None
    redis_url: str | None
    data_dir: Path
    log_level: str
    keep: bool
    tool: str = "locust"


@dataclass(frozen=True)
class LocustStats:
    """The aggregated row of a locust ``*_stats.csv``."""

    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float


def rss_mb(pid: int) -> float | None:
    """The resident set of one process in MiB (``VmRSS``), None once it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return parse_vmrss_mb(status)


def parse_vmrss_mb(status: str) -> float | None:
    """``VmRSS`` of a ``/proc/PID/status`` text in MiB (None for a zombie, which has no such line)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def _tree(root: int) -> list[int]:
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += children(pid)
    return found


@dataclass
class ProcessSampler:
    """A process tree during a phase: the largest RSS (MiB) of any one process, sampled in a thread,
    the CPU seconds the tree used, and how busy the whole machine was (0..1)."""

    root: int
    peak_mb: float = 0.0
    cpu_s: float = 0.0
    machine_busy: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu_start: dict[int, float] = field(default_factory=dict)
    _machine_start: tuple[int, int] = (0, 0)

    def sample(self) -> None:
        """One RSS sample of the root and its descendants; processes that just ended are skipped."""
        for pid in _tree(self.root):
            self.peak_mb = max(self.peak_mb, rss_mb(pid) or 0.0)

    def __enter__(self) -> ProcessSampler:
        def loop() -> None:
            while not self._stop.wait(RSS_SAMPLE_SECONDS):
                self.sample()

        self._cpu_start = {pid: cpu_seconds(pid) for pid in _tree(self.root)}
        self._machine_start = machine_busy_ticks()
        self.sample()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        # Workers started during the phase (a restart) count from zero.
        self.cpu_s = sum(cpu_seconds(pid) - self._cpu_start.get(pid, 0.0) for pid in _tree(self.root))
        busy, total = machine_busy_ticks()
        elapsed = total - self._machine_start[1]
        self.machine_busy = (busy - self._machine_start[0]) / elapsed if elapsed else 0.0


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Options from ``argv``; service URLs default to ``REMINDERS_DATABASE_URL`` / ``REDIS_URL``."""
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.api_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds per phase (default 30)")
    parser.add_argument("--users", type=int, default=32, help="concurrent locust users (default 32)")
    parser.add_argument("--processes", type=int, default=2, help="locust worker processes (default 2)")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("REMINDERS_API_WORKERS") or os.cpu_count() or 1),
        help="uvicorn worker processes (default REMINDERS_API_WORKERS, else one per CPU)",
    )
    parser.add_argument("--database-url", default=os.environ.get("REMINDERS_DATABASE_URL") or None)
    parser.add_argument("--redis-url", default=os.environ.get("REMINDERS_REDIS_URL") or None)
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / ".data" / "api-bench")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the API's REMINDERS_LOG_LEVEL (default WARNING: no access log or per-create line)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--tool",
        choices=("locust", "wrk"),
        default="locust",
        help="load generator (default locust; wrk: far less CPU per request, needs the wrk binary)",
    )
    args = parser.parse_args(argv)
    for name in ("duration", "users", "processes", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return Options(
        duration=args.duration,
        users=args.users,
        processes=args.processes,
        workers=args.workers,
        database_url=args.database_url,
        redis_url=args.redis_url,
        data_dir=args.data_dir,
        log_level=args.log_level,
        keep=args.keep,
        tool=args.tool,
    )


def log(message: str) -> None:
    """Progress for the human; stdout carries only the result lines."""
    print(f"[api_bench] {message}", file=sys.stderr, flush=True)


def _number(value: str) -> float:
    # Locust writes "N/A" for a percentile it has no sample for.
    try:
        return float(value)
    except ValueError:
        return 0.0


def parse_locust_stats(text: str) -> LocustStats:
    """The ``Aggregated`` row of a locust ``<prefix>_stats.csv`` (times in ms)."""
    for row in csv.DictReader(text.splitlines()):
        if row.get("Name") == "Aggregated":
            return LocustStats(
                requests=int(_number(row["Request Count"])),
                failures=int(_number(row["Failure Count"])),
                rps=_number(row["Requests/s"]),
                p50_ms=_number(row["50%"]),
                p99_ms=_number(row["99%"]),
            )
    raise ValueError("no Aggregated row in the locust stats")


def verdict(
    benchmark: str, stats: LocustStats, rss_mb: float, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON line of one phase: the numbers, the target and whether it was met."""
    target = TARGETS[benchmark]
    met = (
        stats.rps >= target["rps"]
        and stats.p99_ms <= target["p99_ms"]
        and rss_mb <= target["rss_mb"]
        and stats.failures == 0
        and stats.requests > 0
    )
    return {
        "benchmark": benchmark,
        "rps": round(stats.rps, 1),
        "p50_ms": stats.p50_ms,
        "p99_ms": stats.p99_ms,
        "requests": stats.requests,
        "failures": stats.failures,
        "rss_mb": round(rss_mb, 1),
        "target": target,
        "met": met,
        **(extra or {}),
    }


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def bench_database(server_url: str, keep: bool) -> Iterator[str]:
    """A fresh migrated database on the server, dropped after unless ``keep``."""
    name = f"bench_api_{secrets.token_hex(4)}"
    asyncio.run(admin(server_url, f'CREATE DATABASE "{name}"'))
    url = with_database(server_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        if keep:
            log(f"kept database {name}")
        else:
            asyncio.run(admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _sample_ids(database_url: str, limit: int) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT id FROM reminders ORDER BY random() LIMIT $1", limit)
    finally:
        await conn.close()
    return [str(r["id"]) for r in rows]


@contextlib.contextmanager
def running_api(
    options: Options, database_url: str, redis_url: str, key: str, log_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The API started with ``reminders up``'s command line; its URL and process."""
    port = free_port()
    env = {
        # The caller's REMINDERS_* must not leak in: the bench decides every setting that matters.
        **{k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")},
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_REDIS_URL": redis_url,
        "REMINDERS_BOOTSTRAP_API_KEY": key,
        "REMINDERS_PAYLOAD_KEYS": Fernet.generate_key().decode(),
        "REMINDERS_RATE_LIMIT_PER_SECOND": "0",
        "REMINDERS_API_HOST": "127.0.0.1",
        "REMINDERS_API_PORT": str(port),
        "REMINDERS_API_WORKERS": str(options.workers),
        "REMINDERS_LOG_LEVEL": options.log_level,
        "REMINDERS_LOG_FORMAT": "json",
    }
    # Explicit values win over the environment; no TLS, so locust speaks plain HTTP on loopback.
    settings = Settings(
        api_host="127.0.0.1",
        api_port=port,
        api_workers=options.workers,
        log_level=options.log_level,
        tls_certfile=None,
        tls_keyfile=None,
    )
    argv = api_command(settings)
    log("starting the API: " + " ".join(argv[1:]))
    with log_path.open("wb") as out:
        process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, timeout=2) as client:
            while True:
                if process.poll() is not None:
                    raise BenchError(f"the API exited with {process.returncode}; see {log_path}")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise BenchError(f"the API did not answer within 60 s; see {log_path}")
                time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_locust(
    options: Options, url: str, key: str, scenario: str, work_dir: Path, extra_env: Mapping[str, str]
) -> LocustStats:
    """One headless locust run of ``scenario``; its aggregated stats."""
    prefix = work_dir / scenario
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", url, "-u", str(options.users), "-r", str(options.users), "-t", f"{options.duration}s",
        "--reset-stats", "--csv", str(prefix), "--stop-timeout", "5",
    ]  # fmt: skip
    if options.processes > 1:
        argv += ["--processes", str(options.processes)]
    env = {**os.environ, "LOCUST_API_KEY": key, "LOCUST_SCENARIO": scenario, **extra_env}
    env.pop("REMINDERS_BOOTSTRAP_API_KEY", None)
    log(f"locust {scenario}: {options.users} users, {options.processes} processes, {options.duration}s")
    with (work_dir / f"{scenario}.locust.log").open("wb") as out:
        done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        raise BenchError(f"locust exited with {done.returncode} and wrote no stats; see {work_dir}")
    return parse_locust_stats(stats_file.read_text())


# The wrk scenarios of loadtests/locustfile.py (create: one-time and recurring 2:1; get: random ids),
# and a done() hook printing the numbers the JSON lines need (times in microseconds).
WRK_SCRIPT = r"""
local key = os.getenv("WRK_API_KEY")
local scenario = os.getenv("WRK_SCENARIO")
local assistants, ids = {}, {}
for a in string.gmatch(os.getenv("WRK_ASSISTANTS") or "", "[^,]+") do assistants[#assistants + 1] = a end
local crons = {"0 10 * * *", "*/15 * * * *", "0 9 * * 1-5"}
local zones = {"Europe/Berlin", "UTC", "America/New_York", "Asia/Tokyo"}
local one_time_payloads = {
  [[{\"text\": \"Meeting\", \"priority\": \"normal\"}]], [[{\"text\": \"Call the bank\"}]],
}
local recurring_payloads = {
  [[{\"check_type\": \"daily_report\", \"report_id\": \"daily_456\"}]],
  [[{\"monitor_type\": \"currency\", \"currency_pair\": \"USD/EUR\", \"threshold\": 1.05, ]]
    .. [[\"direction\": \"above\"}]],
}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(os.time() * 1000 + seed)
  wrk.headers["X-API-Key"] = key
  if scenario == "create" then
    wrk.headers["Content-Type"] = "application/json"
  else
    for line in io.lines(os.getenv("WRK_IDS_FILE")) do
      if #line > 0 then ids[#ids + 1] = line end
    end
  end
end

local function pick(list) return list[math.random(#list)] end

function request()
  if scenario ~= "create" then
    return wrk.format("GET", "/reminders/" .. pick(ids))
  end
  local common = string.format('"user_id": %d, "assistant_id": "%s"',
    math.random(1, 2147483647), pick(assistants))
  local body
  if math.random(3) <= 2 then
    local at = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + math.random(5, 4 * 3600))
    body = string.format('{%s, "type": "one_time", "trigger_at": "%s", "payload": "%s"}',
      common, at, pick(one_time_payloads))
  else
    body = string.format(
      '{%s, "type": "recurring", "cron_expression": "%s", "timezone": "%s", "payload": "%s"}',
      common, pick(crons), pick(zones), pick(recurring_payloads))
  end
  return wrk.format("POST", "/reminders/", nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def parse_wrk_result(text: str) -> LocustStats:
    """The numbers of wrk's output (the ``WRK_RESULT`` line of WRK_SCRIPT's done hook), in ms."""
    for line in text.splitlines():
        if line.startswith("WRK_RESULT "):
            raw = json.loads(line.removeprefix("WRK_RESULT "))
            seconds = raw["duration_us"] / 1e6
            return LocustStats(
                requests=raw["requests"],
                failures=raw["status_errors"] + raw["socket_errors"],
                rps=raw["requests"] / seconds if seconds else 0.0,
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
            )
    raise ValueError("no WRK_RESULT line in the wrk output")


def run_wrk(
    options: Options, url: str, key: str, scenario: str, work_dir: Path, extra_env: Mapping[str, str]
) -> LocustStats:
    """One wrk run of ``scenario`` (``--processes`` threads, ``--users`` connections); its stats."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("--tool wrk needs the wrk binary on PATH (Debian: apt-get install wrk)")
    script = work_dir / "bench.lua"
    script.write_text(WRK_SCRIPT)
    threads = max(1, min(options.processes, options.users))
    argv = [
        wrk, "-t", str(threads), "-c", str(options.users), "-d", f"{options.duration}s",
        "--timeout", "10s", "-s", str(script), url,
    ]  # fmt: skip
    assistants = ",".join(str(uuid.uuid4()) for _ in range(5))
    env = {
        **os.environ, "WRK_API_KEY": key, "WRK_SCENARIO": scenario, "WRK_ASSISTANTS": assistants,
        **{k.replace("LOCUST_REMINDER_IDS_FILE", "WRK_IDS_FILE"): v for k, v in extra_env.items()},
    }  # fmt: skip
    log(f"wrk {scenario}: {options.users} connections, {threads} threads, {options.duration}s")
    done = subprocess.run(argv, cwd=PROJECT_ROOT, env=env, capture_output=True)
    output = done.stdout.decode(errors="replace")
    (work_dir / f"{scenario}.wrk.log").write_text(output + done.stderr.decode(errors="replace"))
    try:
        return parse_wrk_result(output)
    except ValueError:
        raise BenchError(f"wrk exited with {done.returncode} and printed no result; see {work_dir}") from None


def usage(api: ProcessSampler, stats: LocustStats) -> dict[str, float]:
    """Where the CPU went: the API's CPU per request and how busy the machine was (0..1).

    Both span the whole locust run, ramp-up included, so CPU per request is a slight overestimate.
    """
    per_request = api.cpu_s / stats.requests * 1000 if stats.requests else 0.0
    return {"api_cpu_ms_per_request": round(per_request, 3), "machine_busy": round(api.machine_busy, 3)}


def bench(options: Options, database_url: str, redis_url: str) -> list[dict[str, Any]]:
    """Both phases against one API process; their JSON lines."""
    key = "bench-" + secrets.token_urlsafe(16)
    results: list[dict[str, Any]] = []
    options.data_dir.mkdir(parents=True, exist_ok=True)
    # The API's and locust's logs; kept only if the run fails, to see why.
    work_dir = Path(tempfile.mkdtemp(prefix="run-", dir=options.data_dir))
    try:
        common: dict[str, Any] = {
            "users": options.users,
            "locust_processes": options.processes,
            "api_workers": options.workers,
        }
        load = run_locust
        if options.tool == "wrk":
            common["tool"] = "wrk"
            load = run_wrk
        with running_api(options, database_url, redis_url, key, work_dir / "api.log") as (url, process):
            with ProcessSampler(process.pid) as api:
                stats = load(options, url, key, "create", work_dir, {})
            results.append(verdict("api_create", stats, api.peak_mb, {**common, **usage(api, stats)}))
            ids = asyncio.run(_sample_ids(database_url, GET_IDS))
            if not ids:
                raise BenchError("the create phase stored no reminder")
            ids_file = work_dir / "ids.txt"
            ids_file.write_text("\n".join(ids))
            with ProcessSampler(process.pid) as api:
                stats = load(options, url, key, "get", work_dir, {"LOCUST_REMINDER_IDS_FILE": str(ids_file)})
            results.append(verdict("api_get", stats, api.peak_mb, {**common, **usage(api, stats)}))
            if process.poll() is not None:
                raise BenchError(f"the API exited with {process.returncode} during the run")
    except BaseException:
        log(f"logs kept in {work_dir}")
        raise
    shutil.rmtree(work_dir, ignore_errors=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Run both phases and print their JSON lines; 0 only if every target was met."""
    options = parse_args(argv)
    try:
        servers = services(options.database_url, options.redis_url, options.data_dir, log)
        with servers as (server_url, redis_url), bench_database(server_url, options.keep) as url:
            results = bench(options, url, redis_url)
    except BenchError as exc:
        log(f"failed: {exc}")
        return 2
    for result in results:
        print(json.dumps(result), flush=True)
    return 0 if all(r["met"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
