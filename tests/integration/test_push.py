"""The push script on a real Redis: each (event_id, attempt) enters the list once, in order."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from core.events import Occurrence, event_id_for, format_time
from core.redis_keys import EVENT_QUEUE, sent_marker, set_sent_marker
from poller.push import (
    MIN_REDIS_VERSION,
    PUSH_CHUNK,
    EventPusher,
    PushReport,
    redis_too_old,
    version_tuple,
)

DAY = datetime(2026, 11, 26, 10, tzinfo=UTC)


def occurrence(
    scheduled_for: datetime = DAY, attempt: int = 1, reminder_id: uuid.UUID | None = None
) -> Occurrence:
    reminder_id = reminder_id or uuid.uuid4()
    return Occurrence(
        event_id=event_id_for(reminder_id, scheduled_for),
        attempt=attempt,
        reminder_id=reminder_id,
        assistant_id=uuid.uuid4(),
        user_id=1,
        reminder_type="recurring",
        payload_json='{"text":"x"}',
        scheduled_for=scheduled_for,
        triggered_at=scheduled_for,
        created_at=scheduled_for,
        ack_required=True,
    )


async def listed(client: redis.Redis, queue: str = EVENT_QUEUE) -> list[tuple[str, int]]:
    return [(e["event_id"], e["attempt"]) for e in map(orjson.loads, await client.lrange(queue, 0, -1))]


def ids(occurrences: list[Occurrence]) -> list[tuple[str, int]]:
    return [(str(o.event_id), o.attempt) for o in occurrences]


async def test_events_over_many_days_go_in_once_and_in_order(redis_client: redis.Redis) -> None:
    # A fire_all catch-up: one reminder's missed days in one push, plus others of today.
    reminder = uuid.uuid4()
    batch = [occurrence(DAY - timedelta(days=d), reminder_id=reminder) for d in range(40, 0, -1)]
    batch += [occurrence() for _ in range(200)]
    pusher = EventPusher(redis_client, marker_ttl=3600)
    assert await pusher.push(batch) == 240
    assert await pusher.push(batch) == 0
    assert await pusher.push(batch[::-1]) == 0
    assert await listed(redis_client) == ids(batch)


async def test_each_day_has_its_hashes_with_the_marker_ttl(redis_client: redis.Redis) -> None:
    late = replace(occurrence(DAY - timedelta(days=1)), triggered_at=DAY + timedelta(microseconds=4321))
    batch = [occurrence(), late]
    await EventPusher(redis_client, marker_ttl=600).push(batch)
    for o in batch:
        key, member = sent_marker(o.event_id, 1, format_time(o.scheduled_for)[:10])
        assert key == f"{{{EVENT_QUEUE}}}:pushed:{o.scheduled_for:%Y-%m-%d}:{str(o.event_id)[0]}"
        assert member == f"{o.event_id}:1"
        offset = (o.triggered_at - o.scheduled_for) // timedelta(microseconds=1)
        assert await redis_client.hget(key, member) == str(offset).encode()
        assert 0 < await redis_client.ttl(key) <= 600


async def test_a_push_again_reports_the_triggered_at_the_event_went_out_with(
    redis_client: redis.Redis,
) -> None:
    """A claim repeated after a crash learns the time its assistant already saw."""
    first = replace(occurrence(), triggered_at=DAY + timedelta(seconds=2, microseconds=123))
    again = replace(first, triggered_at=DAY + timedelta(seconds=7))
    other = occurrence(DAY + timedelta(hours=1))
    pusher = EventPusher(redis_client, marker_ttl=3600)
    assert (await pusher.push_reporting([first])) == PushReport(1, {})
    report = await pusher.push_reporting([again, other])
    assert report == PushReport(1, {first.event_id: first.triggered_at})
    assert await listed(redis_client) == ids([first, other])


async def test_an_event_marked_in_the_sets_of_the_previous_release_is_not_pushed_again(
    redis_client: redis.Redis,
) -> None:
    # Pushed by a release that kept the markers in sets, without the time, before an upgrade.
    old, new = occurrence(), occurrence()
    key, member = sent_marker(old.event_id, 1, format_time(old.scheduled_for)[:10])
    await redis_client.sadd(set_sent_marker(key), member)
    pusher = EventPusher(redis_client, marker_ttl=3600)
    assert await pusher.push_reporting([old, new]) == PushReport(1, {})
    assert await listed(redis_client) == ids([new])
    assert await pusher.push([old, new]) == 0


async def test_a_new_attempt_is_a_new_event(redis_client: redis.Redis) -> None:
    first = occurrence()
    retry = occurrence(attempt=2, reminder_id=first.reminder_id)
    pusher = EventPusher(redis_client, marker_ttl=3600)
    assert await pusher.push([first]) == 1
    assert await pusher.push([first, retry]) == 1
    assert await listed(redis_client) == ids([first, retry])


async def test_the_same_event_twice_in_one_push_goes_in_once(redis_client: redis.Redis) -> None:
    one, other = occurrence(), occurrence()
    assert await EventPusher(redis_client, marker_ttl=3600).push([one, other, one]) == 2
    assert await listed(redis_client) == ids([one, other])


async def test_a_push_longer_than_one_script_call_keeps_its_order(redis_client: redis.Redis) -> None:
    batch = [occurrence(DAY + timedelta(milliseconds=i)) for i in range(PUSH_CHUNK + 5)]
    pusher = EventPusher(redis_client, marker_ttl=3600)
    assert await pusher.push(batch) == len(batch)
    assert await pusher.push(batch) == 0
    assert await listed(redis_client) == ids(batch)


async def test_each_queue_has_its_own_markers(redis_client: redis.Redis) -> None:
    batch = [occurrence()]
    pusher = EventPusher(redis_client, marker_ttl=3600)
    assert await pusher.push(batch) == 1
    assert await pusher.push(batch, "queue:to_assistant:dead") == 1
    assert await listed(redis_client, "queue:to_assistant:dead") == ids(batch)


def test_versions_compare_by_their_numbers() -> None:
    assert version_tuple("7.0.15") == (7, 0, 15)
    assert version_tuple("6.2.912183") >= MIN_REDIS_VERSION
    assert version_tuple("6.0.16") < MIN_REDIS_VERSION
    assert version_tuple("255.255.255") > MIN_REDIS_VERSION
    assert version_tuple("") < MIN_REDIS_VERSION


async def test_the_test_redis_is_new_enough_and_a_redis_down_does_not_stop_a_start(
    redis_client: redis.Redis,
) -> None:
    assert await redis_too_old(redis_client) is None
    down = redis.Redis(port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        assert await redis_too_old(down) is None
    finally:
        await down.aclose()
