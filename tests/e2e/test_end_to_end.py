"""The whole path as a user sees it: HTTP create → API → Postgres → poller → Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis.asyncio as redis

from client import Consumer, HandlerResult
from tests.conftest import TEST_API_KEY

ASSISTANT = "3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11"


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
