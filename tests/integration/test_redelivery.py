"""Unacknowledged events come back with attempt + 1, then go to the dead-letter list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as redis

from core.db import Pool
from core.events import format_time
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.factories import insert_reminder
from tests.integration._crashes import claim_pushing_then_crashing
from tests.integration.conftest import api_client

ACK_TIMEOUT = 0.2


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"ack_timeout": ACK_TIMEOUT, "max_attempts": 3})


@pytest.fixture
async def api(fast: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(fast, pool) as client:
        yield client


async def events(client: redis.Redis, queue: str = EVENT_QUEUE) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in await client.lrange(queue, 0, -1)]


async def poll_until_quiet(poller: Poller, seconds: float) -> None:
    """Poll every 50 ms for ``seconds``, as the poll tick would."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await poller.poll()
        await asyncio.sleep(0.05)


async def test_unacked_event_is_redelivered_then_dead_lettered(
    fast: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    poller = Poller(fast, pool, redis_client)
    # Attempt n waits ACK_TIMEOUT * 2**(n-1) (+20 %): 0.24 + 0.48 + 0.96 s in the worst case.
    await poll_until_quiet(poller, 2.5)

    sent = await events(redis_client)
    assert [e["attempt"] for e in sent] == [1, 2, 3]
    assert len({e["event_id"] for e in sent}) == 1
    dead = await events(redis_client, DEAD_LETTER_QUEUE)
    assert [(e["event_id"], e["attempt"]) for e in dead] == [(sent[0]["event_id"], 3)]

    row = await pool.fetchrow("SELECT * FROM deliveries WHERE reminder_id = $1", rid)
    assert row is not None
    assert (row["state"], row["attempt"]) == ("dead", 3)
    assert row["dead_lettered_at"] is not None and row["next_attempt_at"] is None
    actions = await pool.fetch(
        "SELECT action, details FROM audit_log WHERE reminder_id = $1 ORDER BY id", rid
    )
    assert [a["action"] for a in actions] == ["fire", "redeliver", "redeliver", "dead_letter"]


async def test_redelivery_backs_off_exponentially(
    fast: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    poller = Poller(fast, pool, redis_client)
    await poller.poll()
    first = await pool.fetchrow("SELECT sent_at, next_attempt_at FROM deliveries")
    assert first is not None
    wait1 = (first["next_attempt_at"] - first["sent_at"]).total_seconds()
    assert ACK_TIMEOUT <= wait1 <= ACK_TIMEOUT * 1.2 + 0.01
    await asyncio.sleep(wait1 + 0.05)
    await poller.poll()
    second = await pool.fetchrow("SELECT attempt, sent_at, next_attempt_at FROM deliveries")
    assert second is not None and second["attempt"] == 2
    wait2 = (second["next_attempt_at"] - second["sent_at"]).total_seconds()
    assert 2 * ACK_TIMEOUT <= wait2 <= 2 * ACK_TIMEOUT * 1.2 + 0.01


async def test_ack_stops_redelivery(
    fast: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    rid = await insert_reminder(
        pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), cron_expression="0 3 * * *"
    )
    poller = Poller(fast, pool, redis_client)
    await poller.poll()
    (event,) = await events(redis_client)
    response = await api.post(f"/reminders/{rid}/ack", json={"event_id": event["event_id"], "result": "ok"})
    assert response.status_code == 200
    await poll_until_quiet(poller, 0.6)
    assert len(await events(redis_client)) == 1
    assert await pool.fetchval("SELECT state FROM deliveries") == "acked"
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rid) == "active"


async def test_ack_after_a_redelivery_is_accepted(
    fast: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    poller = Poller(fast, pool, redis_client)
    await poll_until_quiet(poller, 0.5)
    sent = await events(redis_client)
    assert [e["attempt"] for e in sent] == [1, 2]
    response = await api.post(f"/reminders/{rid}/ack", json={"event_id": sent[0]["event_id"]})
    assert response.status_code == 200
    assert response.json()["reminder"]["status"] == "completed"
    await poll_until_quiet(poller, 0.8)
    assert len(await events(redis_client)) == 2
    assert await redis_client.llen(DEAD_LETTER_QUEUE) == 0


async def test_ack_of_a_dead_event_is_409(
    fast: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    await poll_until_quiet(Poller(fast.model_copy(update={"max_attempts": 1}), pool, redis_client), 0.5)
    (event,) = await events(redis_client, DEAD_LETTER_QUEUE)
    response = await api.post(f"/reminders/{rid}/ack", json={"event_id": event["event_id"]})
    assert response.status_code == 409
    assert "dead" in response.json()["detail"]


async def test_fire_and_forget_is_never_redelivered(
    fast: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    one = await insert_reminder(
        pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), ack_required=False
    )
    await poll_until_quiet(Poller(fast, pool, redis_client), 0.6)
    assert [e["attempt"] for e in await events(redis_client)] == [1]
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", one) == "completed"
    row = await pool.fetchrow("SELECT state, next_attempt_at FROM deliveries")
    assert row is not None and (row["state"], row["next_attempt_at"]) == ("sent", None)


async def test_cancel_stops_redelivery(
    fast: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    poller = Poller(fast, pool, redis_client)
    await poller.poll()
    assert (await api.delete(f"/reminders/{rid}")).status_code == 204
    await poll_until_quiet(poller, 0.6)
    assert len(await events(redis_client)) == 1


async def test_every_attempt_repeats_the_triggered_at_of_a_push_whose_claim_did_not_commit(
    fast: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    """A claim pushes, then dies before its commit; a later claim records the event. The
    redeliveries carry the time the assistant saw first, not the recording claim's."""
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    await claim_pushing_then_crashing(pool, redis_client)
    [first] = await events(redis_client)
    await asyncio.sleep(0.05)  # the recording claim runs at a visibly later time
    poller = Poller(fast, pool, redis_client)
    await poll_until_quiet(poller, 2.5)

    sent = await events(redis_client)
    assert [e["attempt"] for e in sent] == [1, 2, 3]
    assert {e["payload"]["triggered_at"] for e in sent} == {first["payload"]["triggered_at"]}
    assert {e["payload"].get("lateness_seconds") for e in sent} == {first["payload"].get("lateness_seconds")}
    [dead] = await events(redis_client, DEAD_LETTER_QUEUE)
    assert dead["payload"]["triggered_at"] == first["payload"]["triggered_at"]
    recorded = await pool.fetchval("SELECT created_at FROM deliveries WHERE reminder_id = $1", rid)
    assert format_time(recorded) == first["payload"]["triggered_at"]
