"""The state gauges (reminders by status, backlog, queue lengths, deliveries, pollers seen, table sizes).

They describe shared state, so every process (the API and each poller) sets the same values from
the same counts; the counts scan whole tables, so they run every ``stats_interval`` seconds rather
than at each scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import redis.asyncio as redis
import structlog

from core.db import DATABASE_ERRORS, Pool
from core.metrics import Metrics
from core.queries import queries
from core.readiness import REDIS_ERRORS
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE, POLLER_HEARTBEATS
from core.states import DELIVERY_STATES, REMINDER_STATUSES, REMINDER_TYPES

log = structlog.get_logger("stats")

# A poller counts as seen when its heartbeat is at most this old (it beats about every second).
HEARTBEAT_WINDOW = 30
# The tables whose size is watched: reminders, and the three `reminders prune` keeps in check.
SIZED_TABLES = ("reminders", "deliveries", "audit_log", "idempotency_keys")
# Counted on Redis's clock, the one the heartbeats are written with, so host clocks do not matter.
_COUNT_RECENT = """
local now = redis.call('TIME')
return redis.call('ZCOUNT', KEYS[1], tonumber(now[1]) - tonumber(ARGV[1]), '+inf')
"""


async def _refresh_database(metrics: Metrics, pool: Pool, now: datetime | None) -> None:
    async with pool.acquire() as conn:
        reminders = await conn.fetch(queries["count_reminders"])
        backlog = await conn.fetchrow(queries["due_backlog"], now)
        deliveries = await conn.fetch(queries["count_deliveries"])
        sizes = await conn.fetch(queries["table_sizes"], SIZED_TABLES)
    # Every known label is set, to 0 when absent, so a status that empties does not keep its old value.
    by_kind = {(r["status"], r["type"]): r["n"] for r in reminders}
    for status in REMINDER_STATUSES:
        for kind in REMINDER_TYPES:
            metrics.reminders.labels(status, kind).set(by_kind.get((status, kind), 0))
    by_state = {r["state"]: r["n"] for r in deliveries}
    for state in DELIVERY_STATES:
        metrics.deliveries.labels(state).set(by_state.get(state, 0))
    for row in sizes:
        metrics.table_bytes.labels(row["name"]).set(row["bytes"])
    assert backlog is not None  # an aggregate always returns one row
    metrics.due_backlog.set(backlog["due"])
    oldest = backlog["oldest"]
    metrics.oldest_due_age.set(max(0.0, (backlog["db_now"] - oldest).total_seconds()) if oldest else 0.0)


async def _refresh_redis(metrics: Metrics, client: redis.Redis) -> None:
    async with client.pipeline(transaction=False) as pipe:
        pipe.llen(EVENT_QUEUE)
        pipe.llen(DEAD_LETTER_QUEUE)
        pipe.eval(_COUNT_RECENT, 1, POLLER_HEARTBEATS, HEARTBEAT_WINDOW)
        queued, dead, seen = await pipe.execute()
    metrics.queue_length.labels(EVENT_QUEUE).set(queued)
    metrics.queue_length.labels(DEAD_LETTER_QUEUE).set(dead)
    metrics.pollers_seen.set(seen)


async def refresh_stats(
    metrics: Metrics, pool: Pool, client: redis.Redis, *, now: datetime | None = None
) -> None:
    """Set the state gauges from one round of counts; ``now`` overrides the database clock (tests).

    A failing backend is counted in ``errors`` (component "stats") and leaves its gauges as they were.
    """
    try:
        await _refresh_database(metrics, pool, now)
    except DATABASE_ERRORS as exc:
        metrics.errors.labels("stats", "database").inc()
        log.warning("stats_failed", backend="database", error=repr(exc))
    try:
        await _refresh_redis(metrics, client)
    except REDIS_ERRORS as exc:
        metrics.errors.labels("stats", "redis").inc()
        log.warning("stats_failed", backend="redis", error=repr(exc))


async def refresh_forever(
    metrics: Metrics, pool: Pool, client: redis.Redis, interval: float, stop: asyncio.Event
) -> None:
    """Refresh the state gauges now and every ``interval`` seconds until ``stop`` is set.

    An event, not only a cancellation: redis-py can turn a cancellation that lands inside a
    command into one of its own errors (redis/redis-py#2551), which this loop would log and go on
    from, holding up the API's shutdown for good.
    """
    while not stop.is_set():
        try:
            await refresh_stats(metrics, pool, client)
        except Exception as exc:  # the gauges going stale must not end the loop for good
            metrics.errors.labels("stats", "unexpected").inc()
            log.exception("stats_failed", error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
