"""A cancel or snooze stops a redelivery already claimed but not yet pushed (issue 17, defect 15).

The window between a redelivery's claim and its push is held open two ways, both on the real
Redis: a Redis user that may not write the queue's key while the rest answers, and a push that
waits on an asyncio.Event. After a cancel or snooze has answered, none of the reminder's events
may reach the queue again, be re-armed or be dead-lettered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
import redis.asyncio as redis

from core.db import Pool
from core.events import Occurrence
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE
from core.settings import Settings
from poller.push import EventPusher, PushReport
from poller.worker import Poller
from tests.factories import insert_reminder
from tests.integration.conftest import api_client

ACK_TIMEOUT = 0.2


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"ack_timeout": ACK_TIMEOUT, "max_attempts": 3, "sweep_after": 0.3})


@pytest.fixture
async def api(fast: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(fast, pool) as client:
        yield client


async def acl(client: redis.Redis, *args: str) -> None:
    """One ACL subcommand (redis-py's typed acl_setuser spells patterns its own way)."""
    await client.execute_command("ACL", *args)  # type: ignore[no-untyped-call]


@pytest.fixture
async def acl_user(redis_client: redis.Redis) -> AsyncIterator[str]:
    """A Redis user of this test alone, allowed everything until the test narrows its keys."""
    name = f"poller-{uuid.uuid4().hex[:8]}"
    await acl(redis_client, "SETUSER", name, "on", ">secret", "~*", "+@all")
    try:
        yield name
    finally:
        await acl(redis_client, "DELUSER", name)


async def refuse_queue(client: redis.Redis, user: str) -> None:
    """Every key but the event queue: the marker sets, the dead-letter list, the heartbeats."""
    await acl(
        client, "SETUSER", user, "resetkeys", f"~{{{EVENT_QUEUE}}}:*", f"~{DEAD_LETTER_QUEUE}", "~reminders:*"
    )


async def events_of(client: redis.Redis, reminders: Sequence[UUID], queue: str = EVENT_QUEUE) -> list[Any]:
    wanted = {str(r) for r in reminders}
    listed = [orjson.loads(raw) for raw in await client.lrange(queue, 0, -1)]
    pairs = ((e["payload"]["reminder_id"], e["attempt"]) for e in listed)
    return sorted(pair for pair in pairs if pair[0] in wanted)


async def poll_for(poller: Poller, seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await poller.poll()
        await asyncio.sleep(0.05)


async def due_reminders(pool: Pool, count: int) -> list[UUID]:
    return [
        await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
        for _ in range(count)
    ]


async def stop(api: httpx.AsyncClient, reminder_id: UUID, how: str) -> None:
    if how == "cancel":
        response = await api.delete(f"/reminders/{reminder_id}")
        assert response.status_code == 204
    else:
        response = await api.post(f"/reminders/{reminder_id}/snooze", json={"for": "PT1H"})
        assert response.status_code == 200, response.text


async def stop_all(api: httpx.AsyncClient, cancelled: list[UUID], snoozed: list[UUID]) -> None:
    """Cancel some reminders and snooze others, one after another, through the API."""
    for reminder_id in cancelled:
        await stop(api, reminder_id, "cancel")
    for reminder_id in snoozed:
        await stop(api, reminder_id, "snooze")


async def assert_stopped_for_good(pool: Pool, stopped: Sequence[UUID]) -> None:
    """No re-arm, no dead letter, and no redelivery audited after the cancel or snooze."""
    rows = await pool.fetch(
        "SELECT state, next_attempt_at FROM deliveries WHERE reminder_id = ANY($1::uuid[])", list(stopped)
    )
    assert len(rows) == len(stopped)
    assert all(r["next_attempt_at"] is None and r["state"] in ("sent", "stopped") for r in rows)
    late = await pool.fetch(
        """
        SELECT a.reminder_id, a.action FROM audit_log a
        WHERE a.reminder_id = ANY($1::uuid[]) AND a.action IN ('redeliver', 'dead_letter')
          AND a.id > (SELECT min(b.id) FROM audit_log b
                      WHERE b.reminder_id = a.reminder_id AND b.action IN ('cancel', 'snooze'))
        """,
        list(stopped),
    )
    assert late == []


async def test_redis_refusing_the_queue_then_cancel_or_snooze_pushes_nothing_more(
    fast: Settings,
    pool: Pool,
    redis_client: redis.Redis,
    redis_url: str,
    api: httpx.AsyncClient,
    acl_user: str,
) -> None:
    cancelled, snoozed, control = (
        await due_reminders(pool, 3),
        await due_reminders(pool, 3),
        await due_reminders(pool, 1),
    )
    stopped = cancelled + snoozed
    limited = redis.from_url(redis_url, username=acl_user, password="secret")
    try:
        poller = Poller(fast, pool, limited)
        await poller.poll()
        assert await events_of(redis_client, stopped + control) == sorted(
            (str(r), 1) for r in stopped + control
        )

        await refuse_queue(redis_client, acl_user)
        await asyncio.sleep(ACK_TIMEOUT * 1.2 + 0.1)
        await poller.poll()
        # Claimed (attempt 2, audited) and refused by Redis: pending, waiting for a push.
        claimed = await pool.fetch("SELECT state, attempt FROM deliveries")
        assert [(r["state"], r["attempt"]) for r in claimed] == [("pending", 2)] * 7

        await stop_all(api, cancelled, snoozed)

        await acl(redis_client, "SETUSER", acl_user, "allkeys")
        # The backoff (0.5 s), the sweep's age (0.3 s), then two more ack timeouts for the control.
        await poll_for(poller, 2.5)
    finally:
        await limited.aclose()

    assert await events_of(redis_client, stopped) == sorted((str(r), 1) for r in stopped)
    assert await events_of(redis_client, stopped, DEAD_LETTER_QUEUE) == []
    # The window was real: the reminder left alone got its redelivery once Redis took it again.
    assert (str(control[0]), 2) in await events_of(redis_client, control)
    states = await pool.fetch(
        "SELECT DISTINCT state FROM deliveries WHERE reminder_id = ANY($1::uuid[])", stopped
    )
    assert [r["state"] for r in states] == ["stopped"]
    await assert_stopped_for_good(pool, stopped)


class GatedPusher(EventPusher):
    """The real push, held until ``gate`` opens; ``entered`` says a push is waiting."""

    def __init__(self, client: redis.Redis, marker_ttl: int) -> None:
        super().__init__(client, marker_ttl)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def push_reporting(self, occurrences: Sequence[Occurrence], queue: str = EVENT_QUEUE) -> PushReport:
        self.entered.set()
        await self.gate.wait()
        return await super().push_reporting(occurrences, queue)


async def test_cancel_or_snooze_during_a_redelivery_push_pushes_nothing_after_it_answered(
    fast: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    cancelled, snoozed = await due_reminders(pool, 2), await due_reminders(pool, 2)
    poller = Poller(fast, pool, redis_client)
    await poller.poll()
    await asyncio.sleep(ACK_TIMEOUT * 1.2 + 0.1)

    gated = GatedPusher(redis_client, fast.event_marker_ttl)
    poller.pusher = gated
    polling = asyncio.create_task(poller.poll())
    await asyncio.wait_for(gated.entered.wait(), 5)

    async def act(reminder_id: UUID, how: str) -> list[Any]:
        await stop(api, reminder_id, how)
        return await events_of(redis_client, [reminder_id])  # the queue when it answered

    actions = [asyncio.create_task(act(r, "cancel")) for r in cancelled]
    actions += [asyncio.create_task(act(r, "snooze")) for r in snoozed]
    await asyncio.sleep(0.3)  # the actions reach their transactions while the push is held
    # They wait for the push in flight: it holds the deliveries they stop.
    assert not any(action.done() for action in actions)
    gated.gate.set()
    await polling
    answered = await asyncio.gather(*actions)
    poller.pusher = EventPusher(redis_client, fast.event_marker_ttl)
    await poll_for(poller, 1.5)

    stopped = cancelled + snoozed
    for reminder_id, at_answer in zip(stopped, answered, strict=True):
        assert await events_of(redis_client, [reminder_id]) == at_answer
    assert await events_of(redis_client, stopped, DEAD_LETTER_QUEUE) == []
    await assert_stopped_for_good(pool, stopped)


async def test_a_fire_redis_refused_is_not_pushed_after_a_cancel_or_snooze(
    fast: Settings,
    pool: Pool,
    redis_client: redis.Redis,
    redis_url: str,
    api: httpx.AsyncClient,
    acl_user: str,
) -> None:
    cancelled, snoozed = await due_reminders(pool, 2), await due_reminders(pool, 2)
    limited = redis.from_url(redis_url, username=acl_user, password="secret")
    try:
        poller = Poller(fast, pool, limited)
        await refuse_queue(redis_client, acl_user)
        await poller.poll()
        claimed = await pool.fetch("SELECT state, attempt FROM deliveries")
        assert [(r["state"], r["attempt"]) for r in claimed] == [("pending", 1)] * 4
        await stop_all(api, cancelled, snoozed)
        await acl(redis_client, "SETUSER", acl_user, "allkeys")
        await poll_for(poller, 1.5)
    finally:
        await limited.aclose()

    assert await events_of(redis_client, cancelled + snoozed) == []
    states = await pool.fetch("SELECT DISTINCT state FROM deliveries")
    assert [r["state"] for r in states] == ["stopped"]
