"""The API and a poller as real processes, started the way `make run` starts them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.factories import TEST_PAYLOAD_KEY

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


@asynccontextmanager
async def running_stack(
    database_url: str, redis_url: str, log_dir: Path, log_level: str = "INFO"
) -> AsyncIterator[Stack]:
    """Start the API (uvicorn) and one poller on these services; stop both cleanly after."""
    port = free_port()
    env = {
        # The caller's REMINDERS_* (CI may point them at the shared servers) must not leak in.
        **{k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")},
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_REDIS_URL": redis_url,
        "REMINDERS_BOOTSTRAP_API_KEY": TEST_API_KEY,
        "REMINDERS_PAYLOAD_KEYS": TEST_PAYLOAD_KEY,
        "REMINDERS_API_URL": f"http://127.0.0.1:{port}",
        "REMINDERS_LOG_FORMAT": "json",
        "REMINDERS_LOG_LEVEL": log_level,
        "REMINDERS_POLL_INTERVAL": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    commands = {
        "api": [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port)],
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
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the API did not start within 10 s")
        yield Stack(url, logs)
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            # uvicorn re-raises SIGTERM after its graceful shutdown; the poller exits 0.
            assert proc.wait(timeout=15) in (0, -signal.SIGTERM), f"{proc.args!r} did not stop cleanly"
        for handle in files:
            handle.close()
