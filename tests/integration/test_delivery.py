"""From the outbox to Redis: exact bytes, on time, once, and nothing lost when a push fails."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
import redis.asyncio as redis

from api.app import create_app
from core.db import Pool
from core.events import Occurrence, event_id_for, format_time
from core.redis_keys import EVENT_QUEUE, sent_marker
from core.settings import Settings
from poller.claim import Pushed, PushFirst, claim_batch
from poller.push import EventPusher
from poller.worker import Poller
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID, claim_unconfirmed, insert_many_due, insert_reminder, payload_cipher
from tests.integration._crashes import claim_pushing_then_crashing


async def test_event_bytes_in_redis_are_exactly_the_spec_format(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    scheduled = datetime(2025, 4, 6, 12, 0, tzinfo=UTC)
    rid = await insert_reminder(
        pool, next_run_at=scheduled, payload='{"text":"Meeting","priority":"normal"}', user_id=123
    )
    await pool.execute("UPDATE reminders SET created_at = '2025-04-05T10:00:00Z' WHERE id = $1", rid)
    await Poller(settings, pool, redis_client).poll(now=scheduled)

    raw = [e.encode() if isinstance(e, str) else e for e in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert len(raw) == 1
    expected = (
        f'{{"event_id":"{event_id_for(rid, scheduled)}","attempt":1,'
        f'"assistant_id":"{ASSISTANT_ID}","event":"reminder_triggered",'
        f'"payload":{{"reminder_id":"{rid}","user_id":123,"reminder_type":"one_time",'
        '"payload":{"text":"Meeting","priority":"normal"},'
        '"scheduled_for":"2025-04-06T12:00:00Z","triggered_at":"2025-04-06T12:00:00Z",'
        '"created_at":"2025-04-05T10:00:00Z"}}'
    )
    assert raw[0].decode() == expected


async def test_lone_reminder_fires_within_its_second(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    poller = Poller(settings.model_copy(update={"poll_interval": 1.0}), pool, redis_client)
    poller.start()
    try:
        await asyncio.sleep(0.3)  # let the first tick find an empty queue
        due = datetime.now(UTC) + timedelta(seconds=1.5)
        await insert_reminder(pool, next_run_at=due)
        popped = await redis_client.blpop([EVENT_QUEUE], timeout=5)
        arrived = datetime.now(UTC)
    finally:
        await poller.stop()
    assert popped is not None
    assert due <= arrived < due + timedelta(seconds=1), arrived - due
    event = orjson.loads(popped[1])
    triggered = datetime.fromisoformat(event["payload"]["triggered_at"].replace("Z", "+00:00"))
    assert triggered >= due - timedelta(milliseconds=1)


async def test_push_is_idempotent_per_event_and_attempt(pool: Pool, redis_client: redis.Redis) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    occurrences = (await claim_unconfirmed(pool)).occurrences
    pusher = EventPusher(redis_client, marker_ttl=3600)
    assert await pusher.push(occurrences) == 1
    assert await pusher.push(occurrences) == 0  # a retry after a lost reply
    assert await redis_client.llen(EVENT_QUEUE) == 1
    first = occurrences[0]
    marker, member = sent_marker(first.event_id, 1, format_time(first.scheduled_for)[:10])
    assert await redis_client.hexists(marker, member)
    assert 0 < await redis_client.ttl(marker) <= 3600


async def test_crash_between_commit_and_push_is_swept_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    # A poller that committed its claim and died before pushing:
    assert len((await claim_unconfirmed(pool)).occurrences) == 1
    assert await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", rid) == "pending"

    pollers = [Poller(settings.model_copy(update={"sweep_after": 0.0}), pool, redis_client) for _ in range(2)]
    await asyncio.gather(*(p.poll() for p in pollers))
    await pollers[0].poll()
    assert await redis_client.llen(EVENT_QUEUE) == 1
    assert await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", rid) == "sent"


async def test_a_crash_between_push_and_commit_fires_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    due = await pool.fetchval("SELECT next_run_at FROM reminders WHERE id = $1", rid)
    await claim_pushing_then_crashing(pool, redis_client)
    # The event is out, the claim rolled back: nothing recorded, the reminder still due.
    assert await redis_client.llen(EVENT_QUEUE) == 1
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 0
    assert await pool.fetchval("SELECT next_run_at FROM reminders WHERE id = $1", rid) == due

    await Poller(settings, pool, redis_client).poll()
    assert await redis_client.llen(EVENT_QUEUE) == 1
    assert await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", rid) == "sent"
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rid) == "active"


async def test_an_ack_after_a_crash_between_push_and_commit_is_asked_to_retry_until_recorded(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    """The assistant has the event, the database not yet: 503 with Retry-After, never a 404 that
    would make the assistant drop its ack and see the event again after the ack timeout."""
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    await claim_pushing_then_crashing(pool, redis_client)
    [event] = map(orjson.loads, await redis_client.lrange(EVENT_QUEUE, 0, -1))

    early = await api.post(f"/reminders/{rid}/ack", json={"event_id": event["event_id"]})
    assert early.status_code == 503 and early.headers["Retry-After"] == "1", early.text
    assert "not recorded yet" in early.json()["detail"]
    # Any other event id of this reminder is simply unknown.
    other = event_id_for(rid, datetime.now(UTC) - timedelta(days=1))
    assert (await api.post(f"/reminders/{rid}/ack", json={"event_id": str(other)})).status_code == 404

    await Poller(settings, pool, redis_client).poll()  # the next claim records the event
    late = await api.post(f"/reminders/{rid}/ack", json={"event_id": event["event_id"]})
    assert late.status_code == 200, late.text
    assert await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", rid) == "acked"
    assert await redis_client.llen(EVENT_QUEUE) == 1  # pushed once all along


async def test_an_ack_of_a_crashed_claims_event_is_unknown_once_the_reminder_is_paused(
    pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    """No claim records a paused reminder's event: asking the assistant to retry would not end."""
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    await claim_pushing_then_crashing(pool, redis_client)
    [event] = map(orjson.loads, await redis_client.lrange(EVENT_QUEUE, 0, -1))
    paused = await api.patch(f"/reminders/{rid}", json={"status": "paused"})
    assert paused.status_code == 200, paused.text

    ack = await api.post(f"/reminders/{rid}/ack", json={"event_id": event["event_id"]})
    assert ack.status_code == 404, ack.text


@pytest.mark.parametrize("policy", ["fire_all", "fire_once", "skip"])
async def test_acks_of_every_event_a_crashed_claim_pushed_are_asked_to_retry(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient, policy: str
) -> None:
    """Catching up on missed minutes, a claim pushes other occurrences than next_run_at's."""
    next_run_at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    rid = await insert_reminder(
        pool,
        next_run_at=next_run_at,
        cron_expression="* * * * *",
        misfire_policy=policy,
        misfire_grace_seconds=90,  # the oldest one or two are late, the newer ones on time
    )
    await claim_pushing_then_crashing(pool, redis_client)
    pushed = [e["event_id"] for e in map(orjson.loads, await redis_client.lrange(EVENT_QUEUE, 0, -1))]
    assert set(pushed) - {str(event_id_for(rid, next_run_at))}, "only next_run_at's event was pushed"

    for event_id in pushed:
        early = await api.post(f"/reminders/{rid}/ack", json={"event_id": event_id})
        assert early.status_code == 503, (event_id, early.text)

    await Poller(settings, pool, redis_client).poll()
    for event_id in pushed:
        assert (await api.post(f"/reminders/{rid}/ack", json={"event_id": event_id})).status_code == 200


async def test_an_ack_while_the_claim_is_open_waits_for_its_commit(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    pusher = EventPusher(redis_client, marker_ttl=3600)
    app = create_app(settings)
    app.state.pool = pool
    acks: list[asyncio.Task[httpx.Response]] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:

        async def push_and_ack_at_once(occurrences: list[Occurrence]) -> Pushed:
            await pusher.push(occurrences)
            event = orjson.loads((await redis_client.lrange(EVENT_QUEUE, 0, 0))[0])
            ack = client.post(f"/reminders/{rid}/ack", json={"event_id": event["event_id"]})
            acks.append(asyncio.ensure_future(ack))
            await asyncio.sleep(0.3)
            assert not acks[0].done(), "the ack should wait on the claim's lock, not miss its delivery"
            return Pushed(datetime.now(UTC))

        await claim_batch(pool, 10, cipher=payload_cipher(), push_first=PushFirst(push_and_ack_at_once, 60.0))
        response = await acks[0]
    assert response.status_code == 200, response.text
    assert await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", rid) == "acked"
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rid) == "completed"


async def test_redis_down_loses_nothing(settings: Settings, pool: Pool, redis_client: redis.Redis) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    down = Poller(settings, pool, dead)
    await down.poll()
    await dead.aclose()
    assert await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", rid) == "pending"
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rid) == "active"

    up = Poller(settings.model_copy(update={"sweep_after": 0.0}), pool, redis_client)
    await up.poll()
    assert await redis_client.llen(EVENT_QUEUE) == 1
    assert await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", rid) == "sent"


@pytest.mark.parametrize("action", ["continue", "complete"])
async def test_ack_completes_one_time_and_ends_chain_on_complete(
    settings: Settings, pool: Pool, redis_client: redis.Redis, action: str
) -> None:
    one = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    rec = await insert_reminder(
        pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), cron_expression="0 0 1 1 *"
    )
    await Poller(settings, pool, redis_client).poll()
    events = {
        e["payload"]["reminder_id"]: e
        for e in map(orjson.loads, await redis_client.lrange(EVENT_QUEUE, 0, -1))
    }
    app = create_app(settings)
    app.state.pool = pool
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:
        for rid in (one, rec):
            body = {"event_id": events[str(rid)]["event_id"], "result": "ok", "action": action}
            first = await client.post(f"/reminders/{rid}/ack", json=body)
            assert first.status_code == 200, first.text
            second = await client.post(f"/reminders/{rid}/ack", json=body)
            assert second.status_code == 200
            assert second.json()["reminder"] == first.json()["reminder"]
        other = await client.post(f"/reminders/{rec}/ack", json={"event_id": events[str(one)]["event_id"]})
        assert other.status_code == 404

    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", one) == "completed"
    rec_status = await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rec)
    assert rec_status == ("completed" if action == "complete" else "active")
    assert await pool.fetchval("SELECT count(*) FROM deliveries WHERE state = 'acked'") == 2


async def test_stop_finishes_the_batch_in_flight(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_many_due(pool, 20_000)
    poller = Poller(settings.model_copy(update={"batch_size": 100}), pool, redis_client)
    poller.start()
    while await redis_client.llen(EVENT_QUEUE) == 0:
        await asyncio.sleep(0.01)
    await poller.stop()
    recorded = await pool.fetchval("SELECT count(*) FROM deliveries")
    assert 0 < recorded < 20_000, "stop should end the drain early"
    assert await pool.fetchval("SELECT count(*) FROM deliveries WHERE state <> 'sent'") == 0
    assert await redis_client.llen(EVENT_QUEUE) == recorded
