"""`reminders up` (what `make run` runs): servers, migrations, the API and the pollers, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import typer

from cli.running import RUNNING_FILE, RunningStack
from cli.services import (
    KEY_FILE,
    PAYLOAD_KEY_FILE,
    Services,
    Signals,
    StartupError,
    bootstrap_key,
    lock_data_dir,
    payload_keys,
    say,
    start_services,
)
from core.db_wait import Failure, connect_backoff, until_connected
from core.embedded import port_is_free
from core.migrate import upgrade
from core.settings import Settings

API_READY_TIMEOUT = 60.0
CHILD_STOP_TIMEOUT = 15.0
# Restarts of a child that exits: after RESTART_DELAY, doubled for each exit in a row that came
# within STABLE_AFTER of its start, up to RESTART_MAX_DELAY.
RESTART_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
STABLE_AFTER = 30.0
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}
_UVICORN_LEVELS = {"critical", "error", "warning", "info", "debug", "trace"}
_PR_SET_PDEATHSIG = 1


@functools.cache
def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child if `up` itself is killed (-9, OOM)."""
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


@dataclass
class Child:
    """One supervised process: how to start it again, and how its last runs went."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    started_at: float
    # Exits in a row, each within STABLE_AFTER of its start: what lengthens the restart delay.
    quick_exits: int = 0
    restarts: int = 0
    restart_at: float | None = None


@dataclass
class Children:
    """The API and poller processes, each in its own process group so a terminal Ctrl-C reaches
    only `up`, which then stops them in order (children first, then the servers they use).

    A child that exits while `up` runs is restarted (:meth:`supervise`), after RESTART_DELAY
    doubling up to RESTART_MAX_DELAY while it keeps exiting within STABLE_AFTER of its start: a
    crash loop costs one start every RESTART_MAX_DELAY seconds, not a spinning CPU.
    """

    running: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        """Start one child process; its output goes to our terminal."""
        self.running.append(Child(name, argv, env, _spawn(argv, env), time.monotonic()))

    def exited(self) -> str | None:
        """'<name> exited with ...' for the first child that has exited, if any."""
        for child in self.running:
            code = child.process.poll()
            if code is not None:
                return _how_it_ended(child.name, code)
        return None

    def supervise(self, now: float) -> list[str]:
        """Schedule a restart for each child that exited, start those that are due; what happened."""
        said: list[str] = []
        for child in self.running:
            code = child.process.poll()
            if code is not None and child.restart_at is None:
                quick = now - child.started_at < STABLE_AFTER
                child.quick_exits = child.quick_exits + 1 if quick else 0
                delay = min(RESTART_MAX_DELAY, RESTART_DELAY * 2 ** max(0, child.quick_exits - 1))
                child.restart_at = now + delay
                ended = _how_it_ended(child.name, code)
                said.append(f"warning: {ended} unexpectedly; restarting it in {delay:g}s")
            elif child.restart_at is not None and now >= child.restart_at:
                child.process = _spawn(child.argv, child.env)
                child.started_at, child.restart_at = now, None
                child.restarts += 1
                said.append(f"restarted {child.name} (pid {child.process.pid}, restart {child.restarts})")
        return said

    def stop(self, timeout: float = CHILD_STOP_TIMEOUT) -> None:
        """SIGTERM every child, wait up to ``timeout`` for all of them, SIGKILL the rest."""
        alive = [(c.name, c.process) for c in self.running if c.process.poll() is None]
        self.running = []  # nothing is restarted from here on
        if alive:
            say("stopping " + ", ".join(name for name, _ in alive))
        for _, process in alive:
            process.terminate()
        deadline = time.monotonic() + timeout
        for name, process in alive:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within {timeout:.0f}s; killing it")
                process.kill()
                process.wait()


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, process_group=0, preexec_fn=_die_with_parent()
    )


def _how_it_ended(name: str, code: int) -> str:
    if code < 0:
        return f"{name} was killed by {signal.Signals(-code).name}"
    return f"{name} exited with code {code}"


def local_api_url(settings: Settings) -> str:
    """Where this machine reaches the API we start (a wildcard bind is reached on loopback)."""
    host = "127.0.0.1" if settings.api_host in _WILDCARD_HOSTS else settings.api_host
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.tls_certfile else "http"
    return f"{scheme}://{host}:{settings.api_port}"


def child_env(settings: Settings, services: Services, key: str, api_url: str) -> dict[str, str]:
    """Our environment plus the resolved URLs and key, so children need no discovery."""
    env = dict(os.environ)
    env.update(
        REMINDERS_DATABASE_URL=services.database_url,
        REMINDERS_REDIS_URL=services.redis_url,
        REMINDERS_BOOTSTRAP_API_KEY=key,
        REMINDERS_API_URL=settings.api_url or api_url,
        REMINDERS_DATA_DIR=str(settings.data_dir.resolve()),
        PYTHONUNBUFFERED="1",  # logs reach the terminal as they happen
    )
    return env


def poller_env(settings: Settings, env: dict[str, str], index: int) -> dict[str, str]:
    """``env`` for the ``index``-th poller (from 0): its own metrics port, metrics_port + index."""
    if not settings.metrics_port:
        return env  # 0: no poller serves metrics
    return {**env, "REMINDERS_METRICS_PORT": str(settings.metrics_port + index)}


def api_command(settings: Settings) -> list[str]:
    """The uvicorn command line for the API."""
    # uvloop and httptools (uvicorn[standard]) are uvicorn's fastest event loop and HTTP parser;
    # naming them makes a missing one an error at start rather than a silent fallback to asyncio/h11.
    # The protocol is httptools' with a cap and a deadline on request heads (api/http_protocol.py);
    # no Server banner to tell an attacker what runs here.
    argv = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app",
            "--host", settings.api_host, "--port", str(settings.api_port),
            "--loop", "uvloop", "--http", "api.http_protocol:HttpToolsProtocol",
            "--no-server-header", "--timeout-keep-alive", str(settings.keep_alive_timeout)]  # fmt: skip
    if settings.api_workers > 1:
        argv += ["--workers", str(settings.api_workers)]
    if settings.log_level.lower() in _UVICORN_LEVELS:
        argv += ["--log-level", settings.log_level.lower()]
    if settings.tls_certfile and settings.tls_keyfile:
        argv += ["--ssl-certfile", str(settings.tls_certfile), "--ssl-keyfile", str(settings.tls_keyfile)]
    return argv


def wait_for_api(url: str, children: Children, timeout: float = API_READY_TIMEOUT) -> None:
    """Block until the API answers any HTTP request on ``/docs``."""
    deadline = time.monotonic() + timeout
    # This probe only asks "is our own child process listening yet?" on loopback; the certificate
    # may be self-signed or name a public host rather than 127.0.0.1, so it is not verified here.
    # Real clients (the pollers: REMINDERS_API_CA_FILE) verify it.
    verify = not url.startswith("https://")
    with httpx.Client(timeout=2, verify=verify) as client:
        while True:
            exited = children.exited()
            if exited is not None:
                raise StartupError(f"{exited} while starting")
            with contextlib.suppress(httpx.TransportError):
                client.get(url + "/docs")
                return
            if time.monotonic() > deadline:
                raise StartupError(f"the API did not answer on {url} within {timeout:.0f}s")
            time.sleep(0.2)


def wait_for_database(settings: Settings, url: str) -> None:
    """Block until PostgreSQL at ``url`` accepts a connection, saying so while it does not."""

    def report(failure: Failure) -> None:
        say(f"waiting for PostgreSQL at {failure.target} ({failure.error}); retrying in {failure.retry_in}s")

    async def probe() -> None:
        connection = await asyncpg.connect(url, timeout=settings.db_acquire_timeout)
        await connection.close()

    asyncio.run(until_connected(probe, url, connect_backoff(settings), component="up", report=report))


def taken_metrics_ports(settings: Settings) -> list[str]:
    """A warning for each poller whose metrics port something else holds: it will run without one."""
    if not settings.metrics_port:
        return []
    ports = [(number, settings.metrics_port + number - 1) for number in range(1, settings.pollers + 1)]
    return [
        f"port {port} on {settings.metrics_host} is taken: poller-{number} fires, but without "
        "/metrics, /healthz and /readyz (set REMINDERS_METRICS_PORT to a free base port, 0 for none)"
        for number, port in ports
        if not port_is_free(port, settings.metrics_host)
    ]


def banner(
    settings: Settings, services: Services, key: str, api_url: str, warnings: Sequence[str] = ()
) -> str:
    """What to tell the user once everything answers, with what does not work as it should."""
    data_dir = settings.data_dir.resolve()
    where_pg = f"  (embedded, data in {data_dir / 'postgres'})" if services.embedded_postgres else ""
    where_redis = f"  (embedded, data in {data_dir / 'redis'})" if services.embedded_redis else ""
    trigger_at = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {
        "user_id": 123,
        "assistant_id": str(uuid.uuid4()),
        "type": "one_time",
        "trigger_at": trigger_at,
        "payload": json.dumps({"text": "Meeting"}),
    }
    exports = {
        "KEY": key,
        "API": api_url,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
    }
    # The same under the names the CLI (`reminders status`, `tail`, `keys`) and the examples read.
    cli_exports = {
        "REMINDERS_DATABASE_URL": services.database_url,
        "REMINDERS_REDIS_URL": services.redis_url,
        "REMINDERS_API_URL": api_url,
        "REMINDERS_API_KEY": key,
    }
    return "\n".join(
        [
            "",
            "Reminder Service is ready" + (", but:" if warnings else ""),
            *(f"  warning: {warning}" for warning in warnings),
            f"  API        {api_url}",
            f"  Docs       {api_url}/docs",
            f"  Database   {services.database_url}{where_pg}",
            f"  Redis      {services.redis_url}{where_redis}",
            f"  Admin key  {key}",
            f"  Pollers    {settings.pollers}{_metrics_ports(settings)}",
            f"  Restarts   the API or a poller that exits is restarted after {RESTART_DELAY:g}s "
            f"(doubling to {RESTART_MAX_DELAY:g}s while it keeps failing)",
            "",
            "In another shell (the README walk-through uses these):",
            "  export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in exports.items()),
            "  export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in cli_exports.items()),
            '  curl -s -X POST "$API/reminders/" -H "X-API-Key: $KEY" '
            f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def _metrics_ports(settings: Settings) -> str:
    if not settings.metrics_port or not settings.pollers:
        return ""
    last = settings.metrics_port + settings.pollers - 1
    ports = str(settings.metrics_port) if last == settings.metrics_port else f"{settings.metrics_port}-{last}"
    return f"  (metrics on {settings.metrics_host}:{ports})"


def _watch(children: Children, services: Services) -> int:
    """Restart the API or a poller that exits; block until an embedded server dies (then exit code 1)
    or a signal arrives.

    The other pollers keep firing while one is down (that is what SKIP LOCKED is for); the gap
    shows in `reminders status` and reminders_pollers_seen.
    """
    while True:
        for message in children.supervise(time.monotonic()):
            say(message)
        for name, is_running in services.health:
            if not is_running():
                say(f"error: {name} stopped unexpectedly; stopping everything")
                return 1
        time.sleep(0.5)


def _start_and_watch(settings: Settings, stack: contextlib.ExitStack, api_url: str) -> int:
    services = start_services(settings, stack)
    _announce(settings, services, stack, api_url)
    wait_for_database(settings, services.database_url)
    say("running migrations")
    upgrade(services.database_url)
    key = bootstrap_key(settings)
    env = child_env(settings, services, key, api_url)
    env["REMINDERS_PAYLOAD_KEYS"] = payload_keys(settings)  # the children's payload cipher
    children = Children()
    stack.callback(children.stop)
    children.start("api", api_command(settings), env)
    # Pollers fire without the API, but their first REST sync tick would only log retries.
    wait_for_api(api_url, children)
    # Checked before the pollers bind their own ports; one that finds its port taken keeps firing.
    warnings = taken_metrics_ports(settings)
    for number in range(1, settings.pollers + 1):
        poller_argv = [sys.executable, "-m", "poller"]
        children.start(f"poller-{number}", poller_argv, poller_env(settings, env, number - 1))
    typer.echo(banner(settings, services, key, api_url, warnings))
    return _watch(children, services)


def _announce(settings: Settings, services: Services, stack: contextlib.ExitStack, api_url: str) -> None:
    """Leave where everything is in the data dir while we run, for the other commands and the examples."""
    data_dir = settings.data_dir.resolve()
    running = RunningStack(
        database_url=services.database_url,
        redis_url=services.redis_url,
        api_url=settings.api_url or api_url,
        # Only the files' paths, and only of keys made here: keys given in our environment stay there.
        api_key_file=data_dir / KEY_FILE if settings.bootstrap_api_key is None else None,
        payload_key_file=data_dir / PAYLOAD_KEY_FILE if settings.payload_keys is None else None,
    )
    path = data_dir / RUNNING_FILE
    path.write_text(running.to_json())
    stack.callback(path.unlink, missing_ok=True)


def run_up(settings: Settings) -> int:
    """Run everything in the foreground; 0 after Ctrl-C/SIGTERM, 1 if an embedded server died."""
    host = settings.api_host or "0.0.0.0"
    if not port_is_free(settings.api_port, host):
        raise StartupError(
            f"port {settings.api_port} on {host} is already in use; "
            "stop whatever holds it or set REMINDERS_API_PORT"
        )
    api_url = local_api_url(settings)
    with Signals() as signals, lock_data_dir(settings.data_dir.resolve()), contextlib.ExitStack() as stack:
        try:
            return _start_and_watch(settings, stack, api_url)
        except KeyboardInterrupt:
            say("signal received; stopping")
            return 0
        finally:
            signals.stopping = True  # from here on a second Ctrl-C must not cut the cleanup short
