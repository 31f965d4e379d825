"""The reference consumer against real Postgres and Redis: handle, ack, reap, poison, failing acks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from api.app import create_app
from client import Consumer, Handler, HandlerResult
from core.db import Pool
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.conftest import TEST_API_KEY
from tests.factories import insert_reminder

CONSUMER_ID = "test-consumer"
PROCESSING = f"{EVENT_QUEUE}:processing:{CONSUMER_ID}"
POISON = f"{EVENT_QUEUE}:poison"


@pytest.fixture
async def api_transport(settings: Settings, pool: Pool) -> httpx.ASGITransport:
    """The API in-process, on this test's pool."""
    app = create_app(settings)
    app.state.pool = pool
    return httpx.ASGITransport(app=app)


@pytest.fixture
async def http(api_transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process API, with the test key set."""
    async with httpx.AsyncClient(
        transport=api_transport, base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:
        yield client


class Recorder:
    """A handler that records each event and answers with ``result``, or raises ``error``."""

    def __init__(self, result: HandlerResult | None = None, error: Exception | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.result = result or HandlerResult()
        self.error = error

    async def __call__(self, event: dict[str, Any]) -> HandlerResult:
        self.events.append(event)
        if self.error is not None:
            raise self.error
        return self.result


class NoSleep:
    """An injected sleep that only records how long it was asked to wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def make_consumer(
    redis_client: redis.Redis, http: httpx.AsyncClient, handler: Handler, **options: Any
) -> Consumer:
    return Consumer(redis_client, http, handler, CONSUMER_ID, block_timeout=0.1, **options)


async def fire(settings: Settings, pool: Pool, redis_client: redis.Redis, **reminder: Any) -> UUID:
    """Insert a reminder due a second ago and poll once, so its event is in the queue."""
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), **reminder)
    await Poller(settings, pool, redis_client).poll()
    return rid


async def raw_items(redis_client: redis.Redis, key: str) -> list[bytes]:
    return [
        item if isinstance(item, bytes) else item.encode() for item in await redis_client.lrange(key, 0, -1)
    ]


async def delivery_state(pool: Pool, event_id: str) -> str:
    state = await pool.fetchval("SELECT state FROM deliveries WHERE event_id = $1", UUID(event_id))
    assert isinstance(state, str)
    return state


async def reminder_status(pool: Pool, rid: UUID) -> str:
    status = await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rid)
    assert isinstance(status, str)
    return status


async def test_handles_and_acks_a_one_time_reminder(
    settings: Settings, pool: Pool, redis_client: redis.Redis, http: httpx.AsyncClient
) -> None:
    rid = await fire(settings, pool, redis_client, payload='{"text":"Meeting","priority":"normal"}')
    (raw,) = await raw_items(redis_client, EVENT_QUEUE)
    handler = Recorder()
    consumer = make_consumer(redis_client, http, handler)

    assert await consumer.process_one() is True
    assert handler.events == [orjson.loads(raw)]
    event = handler.events[0]
    assert event["payload"]["reminder_id"] == str(rid)
    assert event["payload"]["payload"] == {"text": "Meeting", "priority": "normal"}
    assert await delivery_state(pool, event["event_id"]) == "acked"
    assert await reminder_status(pool, rid) == "completed"
    assert await redis_client.llen(PROCESSING) == 0
    assert await redis_client.llen(EVENT_QUEUE) == 0
    assert await consumer.process_one() is False  # nothing left: waits block_timeout, then says so


@pytest.mark.parametrize(("action", "expected"), [("complete", "completed"), ("continue", "active")])
async def test_action_decides_whether_a_recurring_chain_ends(
    settings: Settings,
    pool: Pool,
    redis_client: redis.Redis,
    api_transport: httpx.ASGITransport,
    action: Any,
    expected: str,
) -> None:
    rid = await fire(settings, pool, redis_client, cron_expression="0 0 1 1 *")
    handler = Recorder(HandlerResult(result="ok", action=action, details={"said": "done"}))
    # The key given to the consumer rather than set on the client.
    async with httpx.AsyncClient(transport=api_transport, base_url="http://api") as bare:
        consumer = make_consumer(redis_client, bare, handler, api_key=TEST_API_KEY)
        assert await consumer.process_one() is True

    assert await delivery_state(pool, handler.events[0]["event_id"]) == "acked"
    assert await reminder_status(pool, rid) == expected
    said = await pool.fetch(
        "SELECT details->'details'->>'said' AS said FROM audit_log WHERE reminder_id = $1 AND action = 'ack'",
        rid,
    )
    assert [row["said"] for row in said] == ["done"]
    assert await redis_client.llen(PROCESSING) == 0


async def test_handler_error_means_no_ack_and_nothing_kept(
    settings: Settings, pool: Pool, redis_client: redis.Redis, http: httpx.AsyncClient
) -> None:
    rid = await fire(settings, pool, redis_client)
    handler = Recorder(error=RuntimeError("assistant is confused"))
    consumer = make_consumer(redis_client, http, handler)

    assert await consumer.process_one() is True
    assert len(handler.events) == 1
    # The service redelivers it with attempt + 1 after its ack timeout.
    assert await delivery_state(pool, handler.events[0]["event_id"]) == "sent"
    assert await reminder_status(pool, rid) != "completed"
    assert await redis_client.llen(PROCESSING) == 0
    assert await redis_client.llen(EVENT_QUEUE) == 0


async def test_reap_after_a_crash_puts_the_event_back_at_the_head(
    settings: Settings, pool: Pool, redis_client: redis.Redis, http: httpx.AsyncClient
) -> None:
    await fire(settings, pool, redis_client)
    await fire(settings, pool, redis_client)
    first, second = await raw_items(redis_client, EVENT_QUEUE)
    # A consumer that took the first event and died inside its handler:
    assert await redis_client.blmove(EVENT_QUEUE, PROCESSING, 1, "LEFT", "RIGHT") == first
    handler = Recorder()
    consumer = make_consumer(redis_client, http, handler)

    assert await consumer.reap() == 1
    assert await raw_items(redis_client, EVENT_QUEUE) == [first, second]
    assert await redis_client.llen(PROCESSING) == 0
    assert await consumer.reap() == 0

    assert await consumer.process_one() is True
    assert handler.events == [orjson.loads(first)]
    assert await delivery_state(pool, handler.events[0]["event_id"]) == "acked"
    assert await raw_items(redis_client, EVENT_QUEUE) == [second]
    assert await redis_client.llen(PROCESSING) == 0


async def test_run_reaps_first_then_handles_until_stopped(
    settings: Settings, pool: Pool, redis_client: redis.Redis, http: httpx.AsyncClient
) -> None:
    await fire(settings, pool, redis_client)
    await fire(settings, pool, redis_client)
    first, second = await raw_items(redis_client, EVENT_QUEUE)
    await redis_client.blmove(EVENT_QUEUE, PROCESSING, 1, "LEFT", "RIGHT")
    stop = asyncio.Event()
    seen: list[dict[str, Any]] = []

    async def handler(event: dict[str, Any]) -> HandlerResult:
        seen.append(event)
        if len(seen) == 2:
            stop.set()
        return HandlerResult()

    await asyncio.wait_for(make_consumer(redis_client, http, handler).run(stop), timeout=10)

    assert seen == [orjson.loads(first), orjson.loads(second)]
    for event in seen:
        assert await delivery_state(pool, event["event_id"]) == "acked"
    assert await redis_client.llen(PROCESSING) == 0
    assert await redis_client.llen(EVENT_QUEUE) == 0


@pytest.mark.parametrize(
    "raw",
    [b"\xffnot json at all", b"[1, 2, 3]", b'{"event_id": "x", "payload": {"reminder_id": "../admin"}}'],
)
async def test_poison_item_is_set_aside_and_the_next_event_still_handled(
    settings: Settings, pool: Pool, redis_client: redis.Redis, http: httpx.AsyncClient, raw: bytes
) -> None:
    await redis_client.rpush(EVENT_QUEUE, raw)
    await fire(settings, pool, redis_client)
    handler = Recorder()
    consumer = make_consumer(redis_client, http, handler)

    assert await consumer.process_one() is True
    assert handler.events == []
    assert await raw_items(redis_client, POISON) == [raw]
    assert await redis_client.llen(PROCESSING) == 0

    assert await consumer.process_one() is True
    assert await delivery_state(pool, handler.events[0]["event_id"]) == "acked"
    assert await redis_client.llen(EVENT_QUEUE) == 0


def stub_api(status: int, calls: list[httpx.Request]) -> httpx.AsyncClient:
    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"detail": "stub"})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://api")


async def test_ack_that_keeps_failing_leaves_the_event_in_processing(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await fire(settings, pool, redis_client)
    (raw,) = await raw_items(redis_client, EVENT_QUEUE)
    calls: list[httpx.Request] = []
    sleep = NoSleep()
    async with stub_api(500, calls) as failing:
        consumer = make_consumer(redis_client, failing, Recorder(), sleep=sleep, api_key=TEST_API_KEY)
        assert await consumer.process_one() is True

    assert len(calls) == 4
    assert sleep.delays == [0.5, 1.0, 2.0]
    assert calls[0].url.path.endswith("/ack")
    assert calls[0].headers["X-API-Key"] == TEST_API_KEY
    event = orjson.loads(raw)
    assert orjson.loads(calls[0].content) == {
        "event_id": event["event_id"],
        "result": "ok",
        "action": "continue",
        "details": None,
    }
    assert await raw_items(redis_client, PROCESSING) == [raw]  # for the reaper
    assert await redis_client.llen(EVENT_QUEUE) == 0
    assert await delivery_state(pool, event["event_id"]) == "sent"


@pytest.mark.parametrize("status", [404, 409])
async def test_ack_of_a_gone_event_is_not_retried(
    settings: Settings, pool: Pool, redis_client: redis.Redis, status: int
) -> None:
    await fire(settings, pool, redis_client)
    calls: list[httpx.Request] = []
    sleep = NoSleep()
    async with stub_api(status, calls) as gone:
        assert await make_consumer(redis_client, gone, Recorder(), sleep=sleep).process_one() is True
    assert len(calls) == 1
    assert sleep.delays == []
    assert await redis_client.llen(PROCESSING) == 0


class Flaky(httpx.AsyncBaseTransport):
    """Fails the first requests with the given outcomes, then passes the rest to the real API."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: list[Callable[[], httpx.Response]]) -> None:
        self.inner = inner
        self.failures = failures

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            return self.failures.pop(0)()
        return await self.inner.handle_async_request(request)


def refuse() -> httpx.Response:
    raise httpx.ConnectError("connection refused")


async def test_ack_recovers_from_transient_failures(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api_transport: httpx.ASGITransport
) -> None:
    await fire(settings, pool, redis_client)
    failures: list[Callable[[], httpx.Response]] = [refuse, lambda: httpx.Response(503)]
    sleep = NoSleep()
    handler = Recorder()
    async with httpx.AsyncClient(
        transport=Flaky(api_transport, failures), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as flaky:
        assert await make_consumer(redis_client, flaky, handler, sleep=sleep).process_one() is True

    assert sleep.delays == [0.5, 1.0]
    assert await delivery_state(pool, handler.events[0]["event_id"]) == "acked"
    assert await redis_client.llen(PROCESSING) == 0


async def test_handler_type_accepts_a_plain_coroutine_function() -> None:
    async def handler(event: dict[str, Any]) -> HandlerResult:
        return HandlerResult(details={"n": len(event)})

    typed: Handler = handler
    call: Callable[[dict[str, Any]], Awaitable[HandlerResult]] = typed
    assert (await call({"a": 1})).details == {"n": 1}


async def test_run_rides_out_redis_being_down(http: httpx.AsyncClient) -> None:
    # No client-side retries (redis-py retries with backoff by default): each call fails at once.
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    stop = asyncio.Event()
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 3:
            stop.set()

    try:
        await asyncio.wait_for(make_consumer(dead, http, Recorder(), sleep=sleep).run(stop), timeout=10)
    finally:
        await dead.aclose()
    assert delays == [0.5, 1.0, 2.0]
