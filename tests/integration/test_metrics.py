"""Metrics: HTTP latency by route template, what a poll observes, the state gauges, the heartbeat."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as redis

from api.app import create_app
from core.db import Pool
from core.metrics import Metrics
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE, POLLER_HEARTBEATS
from core.settings import Settings
from core.stats import refresh_stats
from poller.worker import Poller
from tests.conftest import TEST_API_KEY
from tests.factories import insert_reminder

pytestmark = pytest.mark.integration

NOW = datetime(2030, 1, 1, 10, 0, 0, tzinfo=UTC)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """One sample's value, or None when that series does not exist."""
    return metrics.registry.get_sample_value(name, labels)


# -- the API -------------------------------------------------------------------------------------


async def test_api_latency_is_labelled_by_route_template(settings: Settings, pool: Pool) -> None:
    metrics = Metrics()
    app = create_app(settings, metrics)
    app.state.pool = pool
    reminder_id = uuid.uuid4()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:
        assert (await client.get(f"/reminders/{reminder_id}")).status_code == 404
        assert (await client.get("/no/such/path")).status_code == 404
        # /metrics takes no credentials.
        scrape = await client.get("/metrics", headers={"X-API-Key": ""})
    assert scrape.status_code == 200
    histogram = "reminders_http_request_duration_seconds_count"
    assert sample(metrics, histogram, method="GET", route="/reminders/{reminder_id}", status="404") == 1
    assert sample(metrics, histogram, method="GET", route="unmatched", status="404") == 1
    assert (
        'reminders_http_request_duration_seconds_count{method="GET",route="/reminders/{reminder_id}",'
        'status="404"} 1.0' in scrape.text
    )
    assert str(reminder_id) not in scrape.text


async def test_api_refreshes_the_state_gauges_in_its_lifespan(settings: Settings, pool: Pool) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=30))
    metrics = Metrics()
    app = create_app(settings.model_copy(update={"stats_interval": 0.05}), metrics)
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if sample(metrics, "reminders_due_backlog"):
                break
            await asyncio.sleep(0.02)
    assert sample(metrics, "reminders_due_backlog") == 1
    assert sample(metrics, "reminders_reminders", status="pending", type="one_time") == 1


# -- the poller ----------------------------------------------------------------------------------


async def test_poll_counts_fires_and_observes_lag_and_batch_size(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    for late in (5, 5, 5):
        await insert_reminder(pool, next_run_at=NOW - timedelta(seconds=late))
    await insert_reminder(pool, next_run_at=NOW - timedelta(seconds=5), cron_expression="30 10 * * *")
    metrics = Metrics()
    poller = Poller(settings, pool, redis_client, clock=lambda: NOW, metrics=metrics)
    assert await poller.poll(now=NOW) == 4

    assert sample(metrics, "reminders_fires_total", type="one_time") == 3
    assert sample(metrics, "reminders_fires_total", type="recurring") == 1
    # Pushed "at" NOW on the (injected) database clock, each 5 s after its scheduled time.
    assert sample(metrics, "reminders_fire_lag_seconds_count") == 4
    assert sample(metrics, "reminders_fire_lag_seconds_sum") == pytest.approx(20)
    assert sample(metrics, "reminders_fire_lag_seconds_bucket", le="2.5") == 0
    assert sample(metrics, "reminders_fire_lag_seconds_bucket", le="10.0") == 4
    # One claim of 4 rows (less than a batch: no second round).
    assert sample(metrics, "reminders_claim_batch_size_count") == 1
    assert sample(metrics, "reminders_claim_batch_size_sum") == 4
    assert sample(metrics, "reminders_poll_duration_seconds_count") == 1

    # Nothing is due any more: an idle round observes an empty batch and fires nothing more.
    assert await poller.poll(now=NOW) == 0
    assert sample(metrics, "reminders_claim_batch_size_count") == 2
    assert sample(metrics, "reminders_fires_total", type="one_time") == 3


async def test_redeliveries_and_dead_letters_are_counted(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    fast = settings.model_copy(update={"ack_timeout": 0.05, "max_attempts": 2})
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    metrics = Metrics()
    poller = Poller(fast, pool, redis_client, metrics=metrics)
    # Attempt 1 at once, attempt 2 after <= 0.06 s, dead after <= 0.12 s more.
    for _ in range(40):
        await poller.poll()
        if sample(metrics, "reminders_dead_letters_total"):
            break
        await asyncio.sleep(0.05)
    assert sample(metrics, "reminders_fires_total", type="one_time") == 1
    assert sample(metrics, "reminders_redeliveries_total") == 1
    assert sample(metrics, "reminders_dead_letters_total") == 1
    assert await redis_client.llen(DEAD_LETTER_QUEUE) == 1


async def test_redis_down_counts_an_error_and_fires_nothing(settings: Settings, pool: Pool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1)
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    metrics = Metrics()
    try:
        assert await Poller(settings, pool, dead, metrics=metrics).poll() == 1  # recorded, not pushed
    finally:
        await dead.aclose()
    assert sample(metrics, "reminders_errors_total", component="poller", kind="redis") == 1
    assert sample(metrics, "reminders_fires_total", type="one_time") is None


async def test_heartbeat_is_written_by_a_poll_and_removed_on_stop(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    poller = Poller(settings, pool, redis_client, poller_id="test-host:1")
    # A poller gone for more than the trim age is dropped by the next heartbeat's trim.
    await redis_client.zadd(POLLER_HEARTBEATS, {"gone-host:2": time.time() - 7200})
    await poller.poll()
    score = await redis_client.zscore(POLLER_HEARTBEATS, "test-host:1")
    assert score is not None and abs(score - time.time()) < 5
    assert await redis_client.zscore(POLLER_HEARTBEATS, "gone-host:2") is None

    metrics = Metrics()
    await refresh_stats(metrics, pool, redis_client)
    assert sample(metrics, "reminders_pollers_seen") == 1

    await poller.stop()
    assert await redis_client.zscore(POLLER_HEARTBEATS, "test-host:1") is None


# -- the state gauges ----------------------------------------------------------------------------


async def test_stats_refresh_sets_reminder_backlog_queue_and_delivery_gauges(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_reminder(pool, next_run_at=NOW - timedelta(seconds=10))
    await insert_reminder(pool, next_run_at=NOW - timedelta(seconds=3))
    await insert_reminder(pool, next_run_at=NOW + timedelta(minutes=1), cron_expression="* * * * *")
    paused = await insert_reminder(pool, next_run_at=NOW - timedelta(hours=1), cron_expression="* * * * *")
    await pool.execute("UPDATE reminders SET status = 'paused' WHERE id = $1", paused)
    await redis_client.rpush(EVENT_QUEUE, "a", "b", "c")
    await redis_client.rpush(DEAD_LETTER_QUEUE, "d")

    metrics = Metrics()
    await refresh_stats(metrics, pool, redis_client, now=NOW)

    assert sample(metrics, "reminders_reminders", status="pending", type="one_time") == 2
    assert sample(metrics, "reminders_reminders", status="active", type="recurring") == 1
    assert sample(metrics, "reminders_reminders", status="paused", type="recurring") == 1
    assert sample(metrics, "reminders_reminders", status="completed", type="one_time") == 0
    # The paused one is older but not claimable; the future one is not due.
    assert sample(metrics, "reminders_due_backlog") == 2
    assert sample(metrics, "reminders_oldest_due_age_seconds") == 10
    assert sample(metrics, "reminders_queue_length", queue=EVENT_QUEUE) == 3
    assert sample(metrics, "reminders_queue_length", queue=DEAD_LETTER_QUEUE) == 1
    assert sample(metrics, "reminders_deliveries", state="pending") == 0
    assert sample(metrics, "reminders_pollers_seen") == 0
    for table in ("reminders", "deliveries", "audit_log", "idempotency_keys"):
        size = await pool.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
        assert sample(metrics, "reminders_table_bytes", table=table) == size > 0

    # Once polled, nothing is due any more and the two fires are sent deliveries.
    assert await Poller(settings, pool, redis_client).poll(now=NOW) == 2
    await refresh_stats(metrics, pool, redis_client, now=NOW)
    assert sample(metrics, "reminders_due_backlog") == 0
    assert sample(metrics, "reminders_oldest_due_age_seconds") == 0
    assert sample(metrics, "reminders_deliveries", state="sent") == 2
    assert sample(metrics, "reminders_reminders", status="pending", type="one_time") == 0
    assert sample(metrics, "reminders_reminders", status="active", type="one_time") == 2


async def test_stats_refresh_with_redis_down_counts_it_and_still_counts_rows(pool: Pool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = redis.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=1)
    await insert_reminder(pool, next_run_at=NOW - timedelta(seconds=1))
    metrics = Metrics()
    try:
        await refresh_stats(metrics, pool, dead, now=NOW)
    finally:
        await dead.aclose()
    assert sample(metrics, "reminders_errors_total", component="stats", kind="redis") == 1
    assert sample(metrics, "reminders_due_backlog") == 1
    assert sample(metrics, "reminders_queue_length", queue=EVENT_QUEUE) is None
