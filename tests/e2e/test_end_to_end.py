"""The whole path as a user sees it: HTTP create → API → Postgres → poller → Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from client import Consumer, HandlerResult
from tests.conftest import TEST_API_KEY

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ASSISTANT = "3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def api_url(database_url: str, redis_url: str) -> AsyncIterator[str]:
    """The API and one poller, started as `make run` starts them, on this test's services."""
    port = _free_port()
    env = {
        **os.environ,
        "REMINDERS_DATABASE_URL": database_url,
        "REMINDERS_REDIS_URL": redis_url,
        "REMINDERS_BOOTSTRAP_API_KEY": TEST_API_KEY,
        "REMINDERS_API_URL": f"http://127.0.0.1:{port}",
        "REMINDERS_LOG_FORMAT": "json",
    }
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
    )
    poller = subprocess.Popen([sys.executable, "-m", "poller"], cwd=PROJECT_ROOT, env=env)
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
        yield url
    finally:
        for proc in (api, poller):
            proc.terminate()
        for proc in (api, poller):
            # uvicorn re-raises SIGTERM after its graceful shutdown; the poller exits 0.
            assert proc.wait(timeout=15) in (0, -signal.SIGTERM), f"{proc.args!r} did not stop cleanly"


async def test_reminder_two_seconds_ahead_arrives_on_time(api_url: str, redis_url: str) -> None:
    trigger_at = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=api_url, headers={"X-API-Key": TEST_API_KEY}) as client:
        created = await client.post(
            "/reminders/",
            json={
                "user_id": 123,
                "assistant_id": ASSISTANT,
                "type": "one_time",
                "trigger_at": trigger_at.isoformat(),
                "payload": '{"text": "Meeting", "priority": "normal"}',
            },
        )
        assert created.status_code == 201, created.text
        reminder = created.json()

        seen: list[tuple[datetime, dict[str, Any]]] = []

        async def handler(event: dict[str, Any]) -> HandlerResult:
            seen.append((datetime.now(UTC), event))
            return HandlerResult(result="ok", details={"tagged_user": 123})

        queue = redis.from_url(redis_url)
        consumer = Consumer(queue, client, handler, "e2e-assistant", block_timeout=0.2)
        deadline = trigger_at + timedelta(seconds=2)
        try:
            while not seen and datetime.now(UTC) < deadline:
                await consumer.process_one()
            assert await queue.llen(consumer.processing) == 0
        finally:
            await queue.aclose()
        assert seen, "no event within two seconds of trigger_at"
        arrived, event = seen[0]
        assert trigger_at <= arrived <= deadline

        assert event["event"] == "reminder_triggered"
        assert event["attempt"] == 1
        assert event["assistant_id"] == ASSISTANT
        assert event["payload"]["reminder_id"] == reminder["id"]
        assert event["payload"]["payload"] == {"text": "Meeting", "priority": "normal"}
        assert event["payload"]["reminder_type"] == "one_time"
        assert event["payload"]["triggered_at"].endswith("Z")

        # The consumer acked over REST: the reminder is done and nothing will be redelivered.
        done = (await client.get(f"/reminders/{reminder['id']}")).json()
        assert done["status"] == "completed" and done["last_triggered_at"] is not None
