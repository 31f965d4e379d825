"""Recurring reminders end by themselves: after max_runs fires, or once past until."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import redis.asyncio as redis

from core.db import Pool
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.factories import ASSISTANT_ID, insert_reminder

T0 = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)


def recurring(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "user_id": 1,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": "*/2 * * * * *",
        "payload": "{}",
    }
    return {**base, **fields}


async def test_max_runs_fires_that_many_times_then_completes(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    rid = await insert_reminder(pool, next_run_at=T0, cron_expression="*/2 * * * * *", max_runs=3)
    poller = Poller(settings, pool, redis_client)
    for step in range(6):  # the database clock walks 0, 2, 4... seconds past T0
        await poller.poll(now=T0 + timedelta(seconds=2 * step))
    events = [orjson.loads(e) for e in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert [e["payload"]["scheduled_for"] for e in events] == [
        "2030-01-01T10:00:00Z",
        "2030-01-01T10:00:02Z",
        "2030-01-01T10:00:04Z",
    ]
    row = await pool.fetchrow("SELECT status, next_run_at, runs_count FROM reminders WHERE id = $1", rid)
    assert row is not None and (row["status"], row["next_run_at"], row["runs_count"]) == (
        "completed",
        None,
        3,
    )
    reason = await pool.fetchval(
        "SELECT details->>'reason' FROM audit_log WHERE reminder_id = $1 AND action = 'complete'", rid
    )
    assert reason == "max_runs"


async def test_until_ends_the_series(settings: Settings, pool: Pool, redis_client: redis.Redis) -> None:
    rid = await insert_reminder(
        pool, next_run_at=T0, cron_expression="*/2 * * * * *", until=T0 + timedelta(seconds=3)
    )
    poller = Poller(settings, pool, redis_client)
    for step in range(4):
        await poller.poll(now=T0 + timedelta(seconds=2 * step))
    assert await redis_client.llen(EVENT_QUEUE) == 2  # 10:00:00 and 10:00:02; 10:00:04 is past until
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rid) == "completed"


async def test_start_at_delays_the_first_fire(api: httpx.AsyncClient) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    response = await api.post(
        "/reminders/", json=recurring(cron_expression="0 9 * * *", start_at=start.isoformat(), max_runs=2)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert datetime.fromisoformat(body["next_run_at"]) == start  # a fire exactly at start_at counts
    assert (body["max_runs"], body["runs_count"]) == (2, 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "one_time", "cron_expression": None, "trigger_in": "PT1H", "max_runs": 2}, "max_runs"),
        ({"max_runs": 0}, "max_runs"),
        ({"start_at": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}, "until"),
        (
            {
                "cron_expression": "0 9 * * *",
                "start_at": "2030-01-01T10:00:00Z",
                "until": "2030-01-01T11:00:00Z",
            },
            "until",
        ),
    ],
)
async def test_impossible_end_conditions_are_422(
    api: httpx.AsyncClient, fields: dict[str, object], field: str
) -> None:
    response = await api.post("/reminders/", json=recurring(**fields))
    assert response.status_code == 422, response.text
    assert field in {str(e["loc"][-1]) for e in response.json()["detail"]}
