"""Missed fires (downtime, a pause) follow the reminder's misfire policy, end to end in the DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as redis

from api.app import create_app
from core.db import Pool
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.conftest import TEST_API_KEY
from tests.factories import insert_reminder


async def events(client: redis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in await client.lrange(EVENT_QUEUE, 0, -1)]


def minute_floor(moment: datetime) -> datetime:
    """The start of the minute of ``moment``."""
    return moment.replace(second=0, microsecond=0)


@pytest.mark.parametrize(("policy", "expected"), [("skip", 0), ("fire_once", 1), ("fire_all", 5)])
async def test_downtime_follows_the_policy(
    settings: Settings, pool: Pool, redis_client: redis.Redis, policy: str, expected: int
) -> None:
    # A reminder every minute whose pollers were down for five of them; they come back 10 s after
    # the sixth, which is then still within its 30 s grace. The database clock is injected.
    back_at = datetime(2030, 1, 1, 10, 0, 10, tzinfo=UTC)
    first_missed = datetime(2030, 1, 1, 9, 55, tzinfo=UTC)
    rid = await insert_reminder(
        pool,
        next_run_at=first_missed,
        cron_expression="* * * * *",
        misfire_policy=policy,
        misfire_grace_seconds=30,
    )
    poller = Poller(settings, pool, redis_client)
    await poller.poll(now=back_at)
    await poller.poll(now=back_at)

    sent = await events(redis_client)
    late = [e for e in sent if e["payload"].get("late")]
    on_time = [e for e in sent if not e["payload"].get("late")]
    assert len(late) == expected
    assert len(on_time) == 1, "10:00 is 10 s late, within the grace: sent as usual"
    for event in late:
        assert event["payload"]["lateness_seconds"] > 30
        assert event["payload"]["scheduled_for"].endswith("Z")
    if policy == "fire_all":
        assert [e["payload"]["scheduled_for"] for e in late] == [
            f"2030-01-01T09:{m}:00Z" for m in range(55, 60)
        ]
    next_run = await pool.fetchval("SELECT next_run_at FROM reminders WHERE id = $1", rid)
    assert next_run == datetime(2030, 1, 1, 10, 1, tzinfo=UTC)

    skips = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE reminder_id = $1 AND action = 'skip'", rid
    )
    assert skips == {"skip": 5, "fire_once": 4, "fire_all": 0}[policy]


async def test_resume_after_a_long_pause_sends_one_late_catch_up(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    app = create_app(settings)
    app.state.pool = pool
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as api:
        rid = await insert_reminder(
            pool,
            next_run_at=minute_floor(datetime.now(UTC)) - timedelta(minutes=10),
            cron_expression="* * * * *",
        )
        await pool.execute("UPDATE reminders SET status = 'paused' WHERE id = $1", rid)
        poller = Poller(settings, pool, redis_client)
        await poller.poll()
        assert await events(redis_client) == [], "a paused reminder never fires"

        resumed = await api.patch(f"/reminders/{rid}", json={"status": "active"})
        assert resumed.status_code == 200
        await poller.poll()
    sent = await events(redis_client)
    assert len([e for e in sent if e["payload"].get("late")]) == 1
    assert len(sent) <= 2


async def test_late_one_time_reminder_is_marked_late(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(minutes=3))
    await Poller(settings, pool, redis_client).poll()
    (event,) = await events(redis_client)
    assert event["payload"]["late"] is True
    assert 170 < event["payload"]["lateness_seconds"] < 200
