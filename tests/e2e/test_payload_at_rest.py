"""A payload never rests in clear: not in a pg_dump of the whole database, not in any log line.

The API and a poller run as `make run` runs them (subprocesses, DEBUG logs captured to files); a
reminder carrying a canary string is created over HTTP, fires, is consumed and acked, so reminders,
deliveries and audit_log all hold rows about it. Then the database is dumped with pg_dump.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from client import Consumer, HandlerResult
from core.embedded.postgres import bin_dir
from tests.conftest import TEST_API_KEY
from tests.e2e.stack import Stack, running_stack
from tests.factories import TEST_PAYLOAD_KEY

ASSISTANT = "3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11"


def pg_dump_binary() -> str:
    """The embedded server's pg_dump (it dumps its own and older servers), else the system one."""
    embedded = bin_dir() / "pg_dump"
    if embedded.exists():
        return str(embedded)
    found = shutil.which("pg_dump")
    if found is None:
        pytest.fail("no pg_dump: neither the embedded server's nor one on PATH")
    return found


@pytest.fixture
async def services(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The API and one poller with DEBUG logs, each process's output in a file."""
    async with running_stack(database_url, redis_url, tmp_path, log_level="DEBUG") as stack:
        yield stack


async def test_a_canary_payload_is_in_no_dump_and_no_log(
    services: Stack, database_url: str, redis_url: str
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    payload = f'{{"text":"{canary}","user_id":123}}'
    trigger_at = datetime.now(UTC) + timedelta(seconds=1)
    async with httpx.AsyncClient(base_url=services.url, headers={"X-API-Key": TEST_API_KEY}) as client:
        created = await client.post(
            "/reminders/",
            json={
                "user_id": 123,
                "assistant_id": ASSISTANT,
                "type": "one_time",
                "trigger_at": trigger_at.isoformat(),
                "payload": payload,
            },
        )
        assert created.status_code == 201, created.text
        reminder = created.json()
        assert reminder["payload"] == payload

        seen: list[dict[str, Any]] = []

        async def handler(event: dict[str, Any]) -> HandlerResult:
            seen.append(event)
            return HandlerResult(result="ok", details={"handled": True})

        queue = redis.from_url(redis_url)
        consumer = Consumer(queue, client, handler, "canary-assistant", block_timeout=0.2)
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        try:
            while not seen and datetime.now(UTC) < deadline:
                await consumer.process_one()
        finally:
            await queue.aclose()
        assert seen, "the reminder did not fire"
        assert seen[0]["payload"]["payload"]["text"] == canary  # the assistant gets it decrypted

        done = (await client.get(f"/reminders/{reminder['id']}")).json()
        assert done["status"] == "completed" and done["payload"] == payload

    dump = subprocess.run(
        [pg_dump_binary(), "--no-owner", "--dbname", database_url],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert dump.returncode == 0, dump.stderr.decode(errors="replace")
    text = dump.stdout.decode(errors="replace")
    # The dump does hold the rows about the reminder: its row, its delivery and its audit trail.
    assert text.count(reminder["id"]) >= 3
    assert "COPY public.deliveries" in text and "COPY public.audit_log" in text
    assert canary not in text
    assert canary.encode().hex() not in text  # nor as bytea hex

    logs = "".join(path.read_text(errors="replace") for path in services.logs)
    assert reminder["id"] in logs  # the flow was logged: create, fire, ack
    assert canary not in logs
    # Nor a credential or a payload key, at DEBUG level, anywhere in the flow.
    assert TEST_API_KEY not in logs and TEST_API_KEY not in text
    assert TEST_PAYLOAD_KEY not in logs and TEST_PAYLOAD_KEY not in text
