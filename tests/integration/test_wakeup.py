"""Early wake-ups: the API NOTIFYs reminders_due, a sleeping poller hears it and fires on time.

Every poller here ticks only every 30 s, so a fire on time can only come from the NOTIFY wake-up.
Timing bounds are loose (correctness, not speed: loadtests/idle_lag.py measures the speed).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import redis.asyncio as redis

from core.db import Pool
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.wakeup import CHANNEL
from poller.worker import Poller
from tests.factories import ASSISTANT_ID, insert_reminder

SLOW_TICK = 30.0
# How late a fire may be and still count as woken by the NOTIFY (the tick would be ~30 s late).
ON_TIME = timedelta(seconds=0.5)


def one_time(trigger_at: datetime) -> dict[str, object]:
    return {
        "user_id": 1,
        "assistant_id": str(ASSISTANT_ID),
        "payload": "{}",
        "type": "one_time",
        "trigger_at": trigger_at.isoformat(),
    }


async def _until(condition: Callable[[], Coroutine[Any, Any, bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def sleeping_poller(settings: Settings, pool: Pool, redis_client: redis.Redis) -> AsyncIterator[Poller]:
    """A started poller whose first tick is done and whose listener is connected: from here on, only
    a NOTIFY (or the tick in 30 s) makes it poll."""
    poller = Poller(settings.model_copy(update={"poll_interval": SLOW_TICK}), pool, redis_client)
    poller.start()
    try:
        assert poller.listener is not None
        await asyncio.wait_for(poller.listener.connected.wait(), 10)

        async def first_tick_done() -> bool:
            job = poller.scheduler.get_job("poll")
            return job is not None and job.next_run_time is not None and not poller._poll_lock.locked()

        await _until(first_tick_done, 10, "the first tick")
        yield poller
    finally:
        await poller.stop()


async def _db_now(pool: Pool) -> datetime:
    now: datetime = await pool.fetchval("SELECT now()")
    return now


async def _next_event(redis_client: redis.Redis, timeout: float) -> dict[str, Any]:
    popped = await redis_client.blpop([EVENT_QUEUE], timeout=timeout)
    assert popped is not None, f"no event within {timeout} s"
    event: dict[str, Any] = orjson.loads(popped[1])
    return event


def _lateness(event: dict[str, Any]) -> timedelta:
    """From the fire's due time to its claim, both on the database clock."""
    payload = event["payload"]
    return datetime.fromisoformat(payload["triggered_at"]) - datetime.fromisoformat(payload["scheduled_for"])


async def test_a_reminder_created_through_the_api_fires_on_time_despite_a_30s_tick(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    async with sleeping_poller(settings, pool, redis_client):
        trigger_at = await _db_now(pool) + timedelta(seconds=1)
        created = await api.post("/reminders/", json=one_time(trigger_at))
        assert created.status_code == 201, created.text
        event = await _next_event(redis_client, timeout=5)
    assert event["payload"]["reminder_id"] == created.json()["id"]
    assert timedelta(0) <= _lateness(event) < ON_TIME


async def test_without_a_notify_the_sleeping_poller_does_not_look(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    # The control for the test above: a row written behind the API's back sends no NOTIFY, so the
    # poller sleeps through its due time; announcing it by hand then wakes the poller at once.
    async with sleeping_poller(settings, pool, redis_client):
        due = await _db_now(pool) + timedelta(seconds=0.3)
        await insert_reminder(pool, next_run_at=due)
        assert await redis_client.blpop([EVENT_QUEUE], timeout=1.2) is None
        await pool.execute("SELECT pg_notify($1, extract(epoch FROM $2::timestamptz)::text)", CHANNEL, due)
        event = await _next_event(redis_client, timeout=5)
    assert _lateness(event) >= timedelta(seconds=0.9)


async def test_the_listener_reconnects_after_its_connection_is_terminated(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    async with sleeping_poller(settings, pool, redis_client) as poller:
        listener = poller.listener
        assert listener is not None
        first_pid = listener.backend_pid
        assert first_pid is not None
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", first_pid)

        async def reconnected() -> bool:
            pid = listener.backend_pid
            return pid is not None and pid != first_pid and listener.connected.is_set()

        await _until(reconnected, 10, "the listener to reconnect")
        errors = poller.metrics.registry.get_sample_value(
            "reminders_errors_total", {"component": "poller", "kind": "listen"}
        )
        assert errors is not None and errors >= 1
        # The new connection listens: a NOTIFY through it still wakes the poller on time.
        trigger_at = await _db_now(pool) + timedelta(seconds=0.5)
        created = await api.post("/reminders/", json=one_time(trigger_at))
        assert created.status_code == 201, created.text
        event = await _next_event(redis_client, timeout=5)
    assert timedelta(0) <= _lateness(event) < ON_TIME


async def test_pollers_woken_by_the_same_notify_fire_it_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    async with (
        sleeping_poller(settings, pool, redis_client) as first,
        sleeping_poller(settings, pool, redis_client) as second,
    ):
        trigger_at = await _db_now(pool) + timedelta(seconds=0.5)
        created = await api.post("/reminders/", json=one_time(trigger_at))
        assert created.status_code == 201, created.text
        event = await _next_event(redis_client, timeout=5)
        await asyncio.sleep(0.3)  # a duplicate would land right after
        assert await redis_client.llen(EVENT_QUEUE) == 0
        assert first.fired + second.fired == 1
    assert timedelta(0) <= _lateness(event) < ON_TIME


# -- what the API announces -------------------------------------------------------------------


@asynccontextmanager
async def notifications(database_url: str) -> AsyncIterator[list[float]]:
    """The payloads NOTIFYed on reminders_due while inside, as epoch seconds."""
    received: list[float] = []

    def on_notify(conn: object, pid: int, channel: str, payload: object) -> None:
        del conn, pid, channel
        received.append(float(str(payload)))

    conn = await asyncpg.connect(database_url)
    try:
        await conn.add_listener(CHANNEL, on_notify)
        yield received
    finally:
        await conn.close()


async def _settle(received: list[float], count: int) -> None:
    # Notifications arrive asynchronously after the API's commit; a round trip flushes them.
    for _ in range(50):
        if len(received) >= count:
            return
        await asyncio.sleep(0.01)


async def test_the_api_announces_sooner_fires_only(
    api: httpx.AsyncClient, pool: Pool, database_url: str
) -> None:
    async with notifications(database_url) as received:
        soon = await _db_now(pool) + timedelta(minutes=1)
        created = (await api.post("/reminders/", json=one_time(soon))).json()
        await _settle(received, 1)
        assert received == [soon.timestamp()]

        # Far beyond any poll interval: the regular tick plans it, no NOTIFY.
        far = soon + timedelta(hours=1)
        await api.post("/reminders/", json=one_time(far))
        # Moved later: the poller woke (or will) for the earlier time and re-plans then.
        later = await api.post(
            f"/reminders/{created['id']}/snooze", json={"until": (soon + timedelta(seconds=30)).isoformat()}
        )
        assert later.status_code == 200, later.text
        # Paused: nothing to fire.
        assert (await api.patch(f"/reminders/{created['id']}", json={"status": "paused"})).status_code == 200
        await asyncio.sleep(0.1)
        assert received == [soon.timestamp()]

        # Resumed, then moved sooner by PATCH and by snooze: each may now be the nearest.
        resumed = await api.patch(f"/reminders/{created['id']}", json={"status": "active"})
        assert resumed.status_code == 200, resumed.text
        sooner = soon - timedelta(seconds=20)
        patched = await api.patch(f"/reminders/{created['id']}", json={"trigger_at": sooner.isoformat()})
        assert patched.status_code == 200, patched.text
        soonest = sooner - timedelta(seconds=20)
        snoozed = await api.post(f"/reminders/{created['id']}/snooze", json={"until": soonest.isoformat()})
        assert snoozed.status_code == 200, snoozed.text
        await _settle(received, 4)
        assert received == [
            soon.timestamp(),
            (soon + timedelta(seconds=30)).timestamp(),
            sooner.timestamp(),
            soonest.timestamp(),
        ]
