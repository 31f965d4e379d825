"""Snooze moves one occurrence; skip drops the next one; the series itself stays as it was."""

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
from tests.factories import ASSISTANT_ID


def reminder(**fields: object) -> dict[str, object]:
    return {"user_id": 1, "assistant_id": str(ASSISTANT_ID), "payload": "{}", **fields}


async def test_snoozing_a_daily_reminder_moves_only_that_occurrence(api: httpx.AsyncClient) -> None:
    created = (
        await api.post("/reminders/", json=reminder(type="recurring", cron_expression="0 10 * * *"))
    ).json()
    first = datetime.fromisoformat(created["next_run_at"])
    snoozed = await api.post(f"/reminders/{created['id']}/snooze", json={"for": "PT10M"})
    assert snoozed.status_code == 200, snoozed.text
    moved = datetime.fromisoformat(snoozed.json()["next_run_at"])
    assert abs((moved - datetime.now(UTC)) - timedelta(minutes=10)) < timedelta(seconds=5)
    # The series is untouched: the snoozed fire is next, and after it comes the usual 10:00.
    following = (await api.get(f"/reminders/{created['id']}/next", params={"count": 2})).json()["fires"]
    assert datetime.fromisoformat(following[0]["utc"]) == moved
    assert datetime.fromisoformat(following[1]["utc"]) in (first, first + timedelta(days=1))
    history = (await api.get(f"/reminders/{created['id']}/history")).json()["audit"]["items"]
    assert history[0]["action"] == "snooze"


async def test_a_fired_one_time_reminder_snoozed_fires_again(
    api: httpx.AsyncClient, settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    created = (await api.post("/reminders/", json=reminder(type="one_time", trigger_in="PT1S"))).json()
    poller = Poller(settings, pool, redis_client)
    fire_at = datetime.fromisoformat(created["trigger_at"])
    await poller.poll(now=fire_at)
    assert (await api.get(f"/reminders/{created['id']}")).json()["status"] == "active"
    until = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
    snoozed = await api.post(f"/reminders/{created['id']}/snooze", json={"until": until.isoformat()})
    assert snoozed.status_code == 200
    assert snoozed.json()["status"] == "pending"
    await poller.poll(now=until)
    events = [orjson.loads(e) for e in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert len(events) == 2 and events[0]["event_id"] != events[1]["event_id"]
    assert datetime.fromisoformat(events[1]["payload"]["scheduled_for"].replace("Z", "+00:00")) == until
    # The first event's delivery is not redelivered any more.
    assert await pool.fetchval("SELECT count(*) FROM deliveries WHERE next_attempt_at IS NOT NULL") == 1


async def test_skip_moves_a_series_one_step(api: httpx.AsyncClient) -> None:
    created = (
        await api.post("/reminders/", json=reminder(type="recurring", cron_expression="0 10 * * *"))
    ).json()
    first = datetime.fromisoformat(created["next_run_at"])
    skipped = await api.post(f"/reminders/{created['id']}/skip")
    assert skipped.status_code == 200
    assert datetime.fromisoformat(skipped.json()["next_run_at"]) == first + timedelta(days=1)


@pytest.mark.parametrize(
    ("path", "body"), [("snooze", {"for": "PT5M"}), ("skip", None)], ids=["snooze", "skip"]
)
async def test_cancelled_reminders_cannot_be_moved(
    api: httpx.AsyncClient, path: str, body: dict[str, str] | None
) -> None:
    created = (
        await api.post("/reminders/", json=reminder(type="recurring", cron_expression="0 10 * * *"))
    ).json()
    await api.delete(f"/reminders/{created['id']}")
    response = await api.post(f"/reminders/{created['id']}/{path}", json=body)
    assert response.status_code == 409


async def test_skip_of_a_one_time_reminder_is_409(api: httpx.AsyncClient) -> None:
    created = (await api.post("/reminders/", json=reminder(type="one_time", trigger_in="PT1H"))).json()
    assert (await api.post(f"/reminders/{created['id']}/skip")).status_code == 409


@pytest.mark.parametrize("body", [{}, {"for": "PT1M", "until": "2030-01-01T00:00:00Z"}, {"for": "-PT1M"}])
async def test_bad_snooze_is_422(api: httpx.AsyncClient, body: dict[str, str]) -> None:
    created = (await api.post("/reminders/", json=reminder(type="one_time", trigger_in="PT1H"))).json()
    assert (await api.post(f"/reminders/{created['id']}/snooze", json=body)).status_code == 422


async def test_snooze_until_the_past_is_422(api: httpx.AsyncClient) -> None:
    created = (await api.post("/reminders/", json=reminder(type="one_time", trigger_in="PT1H"))).json()
    response = await api.post(f"/reminders/{created['id']}/snooze", json={"until": "2020-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "until"]
