"""The typed clients against the real API in-process: every method, and every error the API gives."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import orjson
import pytest
import redis.asyncio as redis
from pydantic import SecretStr

from api.app import create_app
from client import (
    AsyncRemindersClient,
    Changes,
    Conflict,
    Consumer,
    DstPolicy,
    Forbidden,
    HandlerResult,
    NotFound,
    OneTime,
    PayloadTooLarge,
    RateLimited,
    Recurring,
    RemindersClient,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from core.db import Pool
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.conftest import TEST_API_KEY
from tests.integration._crashes import claim_pushing_then_crashing

ASSISTANT = uuid.UUID("3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11")
OTHER_ASSISTANT = uuid.UUID("bbbbbbbb-0000-4000-8000-00000000000b")
JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256!"


def transport(settings: Settings, pool: Pool) -> httpx.ASGITransport:
    """The app in-process on the test's pool (its lifespan, which opens a pool, is not run)."""
    app = create_app(settings)
    app.state.pool = pool
    return httpx.ASGITransport(app=app)


@pytest.fixture
async def client(api: httpx.AsyncClient) -> AsyncIterator[AsyncRemindersClient]:
    """The async client on the shared ``api`` fixture's httpx client (the admin test key)."""
    async with AsyncRemindersClient(http=api) as reminders:
        yield reminders


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_every_method_of_the_async_client(client: AsyncRemindersClient) -> None:
    preview = await client.preview("0 10 * * *", timezone="Europe/Berlin", count=3)
    assert len(preview.fires) == 3 and all(f.local.hour == 10 for f in preview.fires)

    once = OneTime(123, ASSISTANT, {"text": "Meeting", "user_id": 123}, trigger_in="PT1H")
    first = await client.create(once, idempotency_key="meeting-1")
    replay = await client.create(once, idempotency_key="meeting-1")
    assert replay.id == first.id and first.status == "pending"
    assert first.payload_data == {"text": "Meeting", "user_id": 123}
    at = await client.create(OneTime(123, ASSISTANT, "{}", trigger_at=later(7200), ack_required=False))
    assert at.trigger_at is not None and not at.ack_required

    series = await client.create(
        Recurring(
            123,
            ASSISTANT,
            "0 10 * * *",
            {"check_type": "daily_report"},
            timezone="Europe/Berlin",
            misfire_policy="skip",
            until=later(30 * 86400),
            max_runs=20,
            dst_policy=DstPolicy(gap="skip", repeated="both"),
        )
    )
    assert (series.type, series.status, series.timezone) == ("recurring", "active", "Europe/Berlin")
    assert series.dst_policy == DstPolicy(gap="skip", repeated="both")

    assert (await client.get(series.id)) == series
    page = await client.list_user(123, type="one_time")
    assert {r.id for r in page.items} == {first.id, at.id} and page.total == 2
    assert (await client.list_user(123, status="active", limit=1)).total == 1
    scheduled = await client.list_scheduled()
    times = [r.next_run_at for r in scheduled.items if r.next_run_at is not None]
    assert scheduled.total == len(times) == 3 and times == sorted(times)

    fires = (await client.next_fires(series.id, count=3)).fires
    assert len(fires) == 3 and fires[0].utc == series.next_run_at

    assert (await client.pause(series.id)).status == "paused"
    assert (await client.resume(series.id)).status == "active"
    changed = await client.update(series.id, Changes(payload={"check_type": "weekly"}, max_runs=None))
    assert changed.payload_data == {"check_type": "weekly"} and changed.max_runs is None
    skipped = await client.skip(series.id)
    assert skipped.next_run_at == fires[1].utc

    snoozed = await client.snooze(first.id, for_=timedelta(hours=2))
    assert snoozed.next_run_at is not None and first.next_run_at is not None
    assert snoozed.next_run_at > first.next_run_at
    await client.cancel(at.id)
    assert (await client.get(at.id)).status == "cancelled"

    history = await client.history(series.id)
    actions = [entry.action for entry in history.audit.items]
    assert "create" in actions and history.audit.total == len(actions)


async def test_a_quarantined_reminder_reads_and_lists(client: AsyncRemindersClient, pool: Pool) -> None:
    """What a poller set aside is a status the client knows: one read, a page holding it, the filter."""
    kept = await client.create(OneTime(321, ASSISTANT, "{}", trigger_at=later(3600)))
    aside = await client.create(OneTime(321, ASSISTANT, "{}", trigger_at=later(3600)))
    await pool.execute("UPDATE reminders SET status = 'quarantined' WHERE id = $1", aside.id)
    assert (await client.get(aside.id)).status == "quarantined"
    assert {r.id for r in (await client.list_user(321)).items} == {kept.id, aside.id}
    assert [r.id for r in (await client.list_user(321, status="quarantined")).items] == [aside.id]


async def test_ack_directly_and_through_the_consumer(
    client: AsyncRemindersClient, settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    once = await client.create(OneTime(7, ASSISTANT, {"text": "now"}, trigger_in=0.2))
    chain = await client.create(Recurring(7, ASSISTANT, "* * * * * *", {"monitor_type": "currency"}))
    await asyncio.sleep(1.1)
    await Poller(settings, pool, redis_client).poll()

    queued = await redis_client.lrange(EVENT_QUEUE, 0, -1)
    raw = {orjson.loads(r)["payload"]["reminder_id"]: r for r in queued}
    event = orjson.loads(raw[str(once.id)])
    acked = await client.ack(once.id, event["event_id"], details={"tagged": True})
    assert acked.state == "acked" and acked.reminder.status == "completed"
    with pytest.raises(NotFound):
        await client.ack(once.id, uuid.uuid4())

    handled: list[dict[str, Any]] = []

    async def complete(event: dict[str, Any]) -> HandlerResult:
        handled.append(event)
        return HandlerResult(action="complete")

    # Acked above: drop it, so the chain's event is the consumer's next (bytes are fine; typed as str).
    await redis_client.lrem(EVENT_QUEUE, 1, raw[str(once.id)])  # type: ignore[arg-type]
    consumer = client.consumer(redis_client, complete, "client-test", block_timeout=0.1)
    assert await consumer.process_one()
    assert handled[0]["payload"]["reminder_id"] == str(chain.id)
    assert (await client.get(chain.id)).status == "completed"


async def test_the_consumer_retries_an_ack_until_a_crashed_claim_is_recorded(
    client: AsyncRemindersClient,
    api: httpx.AsyncClient,
    settings: Settings,
    pool: Pool,
    redis_client: redis.Redis,
) -> None:
    """The event is out, its poller died before committing: the ack is 503 (Retry-After: 1) until
    the next claim records the event, and the consumer waits as told and acks it then."""
    reminder = await client.create(OneTime(7, ASSISTANT, {"text": "now"}, trigger_in=0.1))
    await asyncio.sleep(0.3)
    await claim_pushing_then_crashing(pool, redis_client)
    waits: list[float] = []

    async def sleep_while_another_poller_claims(seconds: float) -> None:
        waits.append(seconds)
        await Poller(settings, pool, redis_client).poll()

    async def handle(_: dict[str, Any]) -> HandlerResult:
        return HandlerResult()

    consumer = Consumer(
        redis_client, api, handle, "client-crash-test", block_timeout=0.1, ack_backoff=0.01,
        sleep=sleep_while_another_poller_claims,
    )  # fmt: skip
    assert await consumer.process_one()

    assert waits == [1.0]  # the Retry-After, not the 0.01 s backoff
    state = await pool.fetchval("SELECT state FROM deliveries WHERE reminder_id = $1", reminder.id)
    assert state == "acked"
    assert (await client.get(reminder.id)).status == "completed"


async def test_api_errors_become_typed_errors(client: AsyncRemindersClient) -> None:
    with pytest.raises(NotFound) as missing:
        await client.get(uuid.uuid4())
    assert missing.value.status_code == 404 and missing.value.detail == "reminder not found"

    with pytest.raises(ValidationFailed) as invalid:
        await client.create(Recurring(1, ASSISTANT, "61 * * * *", "{}", timezone="Mars/Base"))
    assert {"cron_expression", "timezone"} <= set(invalid.value.fields)
    with pytest.raises(ValidationFailed) as bad_preview:
        await client.preview("0 10 * * *", timezone="Nowhere/Land")
    assert bad_preview.value.fields == ["timezone"]

    gone = await client.create(OneTime(1, ASSISTANT, "{}", trigger_in=3600))
    await client.cancel(gone.id)
    with pytest.raises(Conflict) as conflict:
        await client.pause(gone.id)
    assert "cancelled" in str(conflict.value.detail)


async def test_credential_errors(settings: Settings, pool: Pool) -> None:
    app = transport(
        settings.model_copy(update={"api_keys": f"bot-key@{ASSISTANT}", "jwt_secret": SecretStr(JWT_SECRET)}),
        pool,
    )
    async with AsyncRemindersClient("http://api", api_key="wrong", transport=app) as wrong:
        with pytest.raises(Unauthorized) as denied:
            await wrong.list_scheduled()
    assert "invalid API key" in str(denied.value.detail)

    async with AsyncRemindersClient("http://api", api_key="bot-key", transport=app) as bot:
        with pytest.raises(Forbidden):
            await bot.create(OneTime(1, OTHER_ASSISTANT, "{}", trigger_in=60))
        mine = await bot.create(OneTime(1, ASSISTANT, "{}", trigger_in=60))

    claims = {"sub": "bot", "aud": "reminder-service", "exp": int(time.time()) + 60,
              "scope": "reminders:read", "assistant_ids": [str(ASSISTANT)]}  # fmt: skip
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    async with AsyncRemindersClient("http://api", token=token, transport=app) as reader:
        assert (await reader.get(mine.id)).id == mine.id
        with pytest.raises(Forbidden) as scope:
            await reader.cancel(mine.id)
    assert "reminders:write" in str(scope.value.detail)
    async with AsyncRemindersClient("http://api", token="not-a-jwt", transport=app) as forged:
        with pytest.raises(Unauthorized):
            await forged.get(mine.id)


async def test_limit_errors(settings: Settings, pool: Pool) -> None:
    limits = {"rate_limit_burst": 1, "rate_limit_per_second": 0.5}
    limited = transport(settings.model_copy(update=limits), pool)
    async with AsyncRemindersClient("http://api", api_key=TEST_API_KEY, transport=limited) as client:
        await client.list_scheduled()
        with pytest.raises(RateLimited) as slow_down:
            await client.list_scheduled()
    assert slow_down.value.retry_after is not None and slow_down.value.retry_after >= 1

    small = transport(settings.model_copy(update={"max_body_bytes": 300}), pool)
    async with AsyncRemindersClient("http://api", api_key=TEST_API_KEY, transport=small) as client:
        with pytest.raises(PayloadTooLarge):
            await client.create(OneTime(1, ASSISTANT, {"text": "x" * 400}, trigger_in=60))


async def test_database_down_is_unavailable(settings: Settings) -> None:
    # Nothing listens on port 1: every acquire fails, as when PostgreSQL is down.
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0, timeout=2)
    try:
        async with AsyncRemindersClient(
            "http://api", api_key=TEST_API_KEY, transport=transport(settings, dead)
        ) as client:
            with pytest.raises(Unavailable) as down:
                await client.get(uuid.uuid4())
        assert down.value.retry_after == 5.0
    finally:
        await dead.close()


class OnLoop(httpx.BaseTransport):
    """A sync transport running each request on the test's event loop, where the app and its pool live."""

    def __init__(self, inner: httpx.AsyncBaseTransport, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def forward() -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return asyncio.run_coroutine_threadsafe(forward(), self.loop).result(timeout=30)


async def test_the_sync_client(settings: Settings, pool: Pool) -> None:
    bridge = OnLoop(transport(settings, pool), asyncio.get_running_loop())

    def walk() -> list[str]:
        seen: list[str] = []
        with RemindersClient("http://api", api_key=TEST_API_KEY, transport=bridge) as client:
            calls: list[Callable[[], object]] = []
            series = client.create(Recurring(5, ASSISTANT, "*/5 * * * *", {"k": 1}), idempotency_key="s")
            once = client.create(OneTime(5, ASSISTANT, {"k": 2}, trigger_at=later(600)))
            calls += [
                lambda: client.get(series.id),
                lambda: client.list_user(5),
                lambda: client.list_scheduled(limit=1),
                lambda: client.preview("*/5 * * * *"),
                lambda: client.next_fires(series.id, count=2),
                lambda: client.pause(series.id),
                lambda: client.resume(series.id),
                lambda: client.update(series.id, Changes(cron_expression="*/10 * * * *")),
                lambda: client.skip(series.id),
                lambda: client.snooze(once.id, until=later(1200)),
                lambda: client.history(series.id, limit=5),
                lambda: client.cancel(once.id),
            ]
            seen += [type(call()).__name__ for call in calls]
            try:
                client.ack(series.id, uuid.uuid4())
            except NotFound as exc:
                seen.append(type(exc).__name__)
        return seen

    seen = await asyncio.to_thread(walk)
    assert seen == ["Reminder", "ReminderPage", "ReminderPage", "Preview", "Preview", "Reminder", "Reminder",
                    "Reminder", "Reminder", "Reminder", "History", "NoneType", "NotFound"]  # fmt: skip
