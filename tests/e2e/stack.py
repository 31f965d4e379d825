"""The API and a poller as real processes, started the way `make run` starts them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import redis.asyncio as redis

from cli.up import api_command
from client import Consumer, Handler, HandlerResult
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import TEST_PAYLOAD_KEY

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def api_serving(client: httpx.AsyncClient, *, database: bool = True) -> bool:
    """Whether the API answers and (``database``) has its database pool: it listens before."""
    try:
        if (await client.get("/healthz")).status_code != 200:
            return False
        if not database:
            return True
        ready = await client.get("/readyz")
    except httpx.TransportError:
        return False  # not listening yet
    return ready.status_code == 200 or "database" not in ready.json().get("checks", {})


async def wait_until_healthy(url: str) -> None:
    """Return once the API at ``url`` answers /healthz and has its database; fail after 10 s."""
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(100):
            if await api_serving(client):
                return
            await asyncio.sleep(0.1)
    pytest.fail("the API did not start within 10 s")


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Stack:
    """Where the API answers, and each process's output file."""

    url: str
    logs: list[Path]
    pid: int | None = None  # of `reminders up`, when the stack is one


def service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of the service processes a test starts: these servers, the test's keys."""
    return {
        # The caller's REMINDERS_* (CI may point them at the shared servers) must not leak in.
        **{k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")},
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_REDIS_URL": redis_url,
        "REMINDERS_BOOTSTRAP_API_KEY": TEST_API_KEY,
        "REMINDERS_PAYLOAD_KEYS": TEST_PAYLOAD_KEY,
        "REMINDERS_LOG_FORMAT": "json",
        "REMINDERS_POLL_INTERVAL": "0.2",
        "REMINDERS_METRICS_PORT": "0",  # a free port per test run is not worth it; 9100 may be taken
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@asynccontextmanager
async def running_stack(
    database_url: str, redis_url: str, log_dir: Path, log_level: str = "INFO"
) -> AsyncIterator[Stack]:
    """Start the API (uvicorn) and one poller on these services; stop both cleanly after."""
    port = free_port()
    env = service_env(
        database_url,
        redis_url,
        REMINDERS_API_URL=f"http://127.0.0.1:{port}",
        REMINDERS_LOG_LEVEL=log_level,
    )
    commands = {
        # The command `reminders up` runs, so the tests meet the server the README starts.
        "api": api_command(Settings(api_host="127.0.0.1", api_port=port, log_level=log_level)),
        "poller": [sys.executable, "-m", "poller"],
    }
    logs = [log_dir / f"{name}.log" for name in commands]
    files: list[IO[bytes]] = [path.open("wb") for path in logs]
    processes = [
        subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        for argv, out in zip(commands.values(), files, strict=True)
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_healthy(url)
        yield Stack(url, logs)
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            # uvicorn re-raises SIGTERM after its graceful shutdown; the poller exits 0.
            assert proc.wait(timeout=15) in (0, -signal.SIGTERM), f"{proc.args!r} did not stop cleanly"
        for handle in files:
            handle.close()


@asynccontextmanager
async def running_up(
    database_url: str, redis_url: str, data_dir: Path, without: Sequence[str] = (), **extra: str
) -> AsyncIterator[Stack]:
    """`reminders up` itself (what `make run` runs), on these services, with one poller; Ctrl-C after.

    ``without`` names variables `up` is not given (it then makes its own keys), ``extra`` adds some.
    """
    port = free_port()
    env = service_env(
        database_url,
        redis_url,
        REMINDERS_API_PORT=str(port),
        REMINDERS_DATA_DIR=str(data_dir),
        REMINDERS_POLLERS="1",
        **extra,
    )
    for name in without:
        del env[name]
    log = data_dir / "up.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import app; app()", "up"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            for _ in range(300):
                if b"Reminder Service is ready" in log.read_bytes():
                    break
                if process.poll() is not None:
                    pytest.fail(f"reminders up exited with {process.returncode}:\n{log.read_text()}")
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"reminders up was not ready within 30 s:\n{log.read_text()}")
            yield Stack(f"http://127.0.0.1:{port}", [log], process.pid)
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl-C: up stops its children, then exits 0
            code = process.wait(timeout=30)
            assert code == 0, f"reminders up exited with {code}:\n{log.read_text()}"


@dataclass(frozen=True)
class Received:
    """One event as the assistant got it, with its times parsed."""

    event: dict[str, Any]

    @property
    def reminder_id(self) -> str:
        return str(self.event["payload"]["reminder_id"])

    @property
    def scheduled_for(self) -> datetime:
        return datetime.fromisoformat(self.event["payload"]["scheduled_for"])

    @property
    def triggered_at(self) -> datetime:
        return datetime.fromisoformat(self.event["payload"]["triggered_at"])


async def _ok(event: dict[str, Any]) -> HandlerResult:
    del event
    return HandlerResult()


@dataclass
class Assistant:
    """Plays the assistant: takes events off the queue with the reference ``Consumer``, which acks each
    over REST with what ``respond`` returns, and keeps every event it got, in order."""

    queue: redis.Redis
    http: httpx.AsyncClient
    respond: Handler = _ok
    consumer_id: str = "e2e-assistant"
    received: list[Received] = field(default_factory=list)
    consumer: Consumer = field(init=False)

    def __post_init__(self) -> None:
        # Short blocking reads, so a receive window is kept to within a fraction of a second.
        self.consumer = Consumer(self.queue, self.http, self._handle, self.consumer_id, block_timeout=0.1)

    async def _handle(self, event: dict[str, Any]) -> HandlerResult:
        self.received.append(Received(event))
        return await self.respond(event)

    async def receive(self, count: int, within: float) -> list[Received]:
        """The events that arrive until ``count`` more came or ``within`` seconds passed (maybe fewer).

        Waiting out the whole window when fewer come is what lets a test say "nothing else fired".
        """
        start = len(self.received)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.received) - start < count and loop.time() < deadline:
            await self.consumer.process_one()
        return self.received[start:]
