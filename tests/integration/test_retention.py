"""Retention (core/retention.py) on the test Postgres: what goes, what stays, in slices."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import redis.asyncio as redis

from core.db import Pool
from core.queries import queries
from core.redis_keys import EVENT_QUEUE
from core.retention import (
    Pruned,
    prune,
    prune_audit_log,
    prune_deliveries,
    prune_idempotency_keys,
    prune_lock,
)
from core.settings import Settings
from poller.worker import Poller
from tests.factories import insert_reminder

# Each kind of delivery: (state, next_attempt_at set, dead_lettered_at set, finished, i.e. prunable).
KINDS = {
    "acked": ("acked", False, False, True),
    "sent_no_ack_due": ("sent", False, False, True),
    "sent_awaiting_ack": ("sent", True, False, False),
    "pending": ("pending", False, False, False),
    "dead_in_dead_letter_list": ("dead", False, True, True),
    "dead_not_yet_listed": ("dead", False, False, False),
}


async def insert_deliveries(pool: Pool, kind: str, days_old: float, count: int = 1) -> None:
    """``count`` deliveries of one kind (KINDS), created ``days_old`` days ago; kind in last_error."""
    state, awaiting, listed, _finished = KINDS[kind]
    await pool.execute(
        """
        INSERT INTO deliveries (event_id, reminder_id, scheduled_for, state, created_at, sent_at,
                                next_attempt_at, dead_lettered_at, last_error)
        SELECT gen_random_uuid(), gen_random_uuid(), now() - make_interval(days => $2::int),
               $1, now() - $2 * interval '1 day', now() - $2 * interval '1 day',
               CASE WHEN $3 THEN now() + interval '1 minute' END,
               CASE WHEN $4 THEN now() - $2 * interval '1 day' END, $5
        FROM generate_series(1, $6)
        """,
        state, days_old, awaiting, listed, kind, count,
    )  # fmt: skip


async def kinds_left(pool: Pool) -> Counter[str]:
    rows = await pool.fetch(
        "SELECT last_error, created_at < now() - interval '30 days' AS old FROM deliveries"
    )
    return Counter(f"{r['last_error']}:{'old' if r['old'] else 'new'}" for r in rows)


async def test_only_finished_deliveries_past_retention_go(pool: Pool) -> None:
    for kind in KINDS:
        await insert_deliveries(pool, kind, days_old=31)
        await insert_deliveries(pool, kind, days_old=29)

    assert await prune_deliveries(pool, 30) == sum(finished for *_, finished in KINDS.values())

    left = await kinds_left(pool)
    assert left == Counter(
        [f"{kind}:new" for kind in KINDS] + [f"{kind}:old" for kind, (*_, done) in KINDS.items() if not done]
    )
    assert await prune_deliveries(pool, 30) == 0  # a rerun finds nothing more


async def test_deliveries_are_pruned_slice_by_slice_over_the_whole_table(pool: Pool) -> None:
    await insert_deliveries(pool, "acked", days_old=40, count=3000)
    await insert_deliveries(pool, "acked", days_old=1, count=500)
    await insert_deliveries(pool, "acked", days_old=40, count=3000)  # at the table's end too
    blocks = await pool.fetchval(queries["relation_blocks"], "deliveries")
    assert blocks > 20
    progress: list[tuple[int, int]] = []

    deleted = await prune_deliveries(
        pool, 30, blocks_per_statement=7, on_progress=lambda done, total: progress.append((done, total))
    )

    assert deleted == 6000
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 500
    assert progress[-1] == (blocks, blocks) and len(progress) == -(-blocks // 7)
    assert [done for done, _ in progress] == sorted({done for done, _ in progress})


async def test_the_delivery_prune_reads_slices_by_tid_range(pool: Pool) -> None:
    """Deliveries have no index by age: a slice must be a TID range scan, not the whole table."""
    plans = [row[0] for row in await pool.fetch(f"EXPLAIN {queries['prune_deliveries']}", 30, 0, 1024)]
    assert any("Tid Range Scan on deliveries" in line for line in plans), plans


async def insert_audit(pool: Pool, days_old: list[float]) -> None:
    """Audit entries in this order (ids ascending), each ``days_old`` days old."""
    await pool.execute(
        """
        INSERT INTO audit_log (at, actor, action, reminder_id)
        SELECT now() - a.days * interval '1 day', 'test', 'create', gen_random_uuid()
        FROM unnest($1::float8[]) WITH ORDINALITY AS a(days, n) ORDER BY n
        """,
        days_old,
    )


async def test_audit_entries_past_retention_go_oldest_first(pool: Pool) -> None:
    await insert_audit(pool, [400.0] * 12 + [10.0] * 5)

    assert await prune_audit_log(pool, 365, batch_size=5) == 12

    ages = await pool.fetch("SELECT at > now() - interval '365 days' AS recent FROM audit_log ORDER BY id")
    assert [r["recent"] for r in ages] == [True] * 5
    assert await prune_audit_log(pool, 365, batch_size=5) == 0


async def test_the_audit_walk_stops_at_the_first_slice_with_a_kept_entry(pool: Pool) -> None:
    # Ids grow with time, so the walk ends at the first slice that holds an entry to keep (after
    # deleting that slice's old ones) rather than read on through the retained log. Old entries
    # after a newer one (a long transaction's) go in a later run, once the newer ones have aged.
    await insert_audit(pool, [400.0] * 4 + [10.0] + [400.0] * 6)
    assert await prune_audit_log(pool, 365, batch_size=4) == 4 + 3
    ages = await pool.fetch("SELECT at > now() - interval '365 days' AS recent FROM audit_log ORDER BY id")
    assert [r["recent"] for r in ages] == [True, False, False, False]


async def insert_idempotency_keys(pool: Pool, hours_old: float, count: int) -> None:
    await pool.execute(
        """
        INSERT INTO idempotency_keys (credential_id, key, request_hash, reminder_id, created_at)
        SELECT 'test', gen_random_uuid()::text, '\\x00', gen_random_uuid(), now() - $1 * interval '1 hour'
        FROM generate_series(1, $2)
        """,
        hours_old,
        count,
    )


async def test_expired_idempotency_keys_go_and_live_ones_stay(pool: Pool) -> None:
    await insert_idempotency_keys(pool, 25, count=7)
    await insert_idempotency_keys(pool, 23, count=3)

    assert await prune_idempotency_keys(pool, batch_size=2) == 7

    assert await pool.fetchval("SELECT count(*) FROM idempotency_keys") == 3


async def test_prune_applies_every_rule_and_zero_days_keeps_a_table(pool: Pool) -> None:
    await insert_deliveries(pool, "acked", days_old=100, count=3)
    await insert_audit(pool, [1000.0] * 2)
    await insert_idempotency_keys(pool, 48, count=4)

    kept = await prune(pool, delivery_retention_days=0, audit_retention_days=0)
    assert kept == Pruned(idempotency_keys=4)
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 3
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == 2

    assert await prune(pool, delivery_retention_days=30, audit_retention_days=365) == Pruned(0, 3, 2)
    # The cut is itself on the record: the one entry left says what went and by which rules.
    entry = await pool.fetchrow("SELECT actor, action, reminder_id, details FROM audit_log")
    assert entry is not None
    assert (entry["actor"], entry["action"], entry["reminder_id"]) == ("prune", "prune", None)
    assert orjson.loads(entry["details"]) == {
        "idempotency_keys": 0, "deliveries": 3, "audit_entries": 2,
        "delivery_retention_days": 30, "audit_retention_days": 365,
    }  # fmt: skip


async def test_a_fired_reminder_acked_then_pruned_keeps_its_reminder_and_its_ack_is_not_found(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    """What the docs promise: the reminder and its history stay; the old event is gone (404)."""
    rid = await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await Poller(settings, pool, redis_client).poll() == 1
    [raw] = await redis_client.lrange(EVENT_QUEUE, 0, -1)
    event = orjson.loads(raw)
    ack = {"event_id": event["event_id"]}
    assert (await api.post(f"/reminders/{rid}/ack", json=ack)).status_code == 200
    audit_entries = await pool.fetchval("SELECT count(*) FROM audit_log WHERE reminder_id = $1", rid)
    await pool.execute("UPDATE deliveries SET created_at = now() - interval '31 days'")

    assert await prune(pool, delivery_retention_days=30, audit_retention_days=0) == Pruned(deliveries=1)

    again = await api.post(f"/reminders/{rid}/ack", json=ack)
    assert again.status_code == 404 and "event not found" in again.text, again.text
    reminder = await api.get(f"/reminders/{rid}")
    assert reminder.status_code == 200 and reminder.json()["status"] == "completed"
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE reminder_id = $1", rid) == audit_entries


async def test_one_prune_at_a_time(pool: Pool) -> None:
    async with prune_lock(pool) as first:
        async with prune_lock(pool) as second:
            assert (first, second) == (True, False)
    async with prune_lock(pool) as again:
        assert again  # released with the block, not with the connection's end


async def test_a_poller_prunes_on_its_tick_unless_another_prune_runs(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_deliveries(pool, "acked", days_old=40, count=3)
    await insert_deliveries(pool, "acked", days_old=10, count=2)
    poller = Poller(settings.model_copy(update={"delivery_retention_days": 30}), pool, redis_client)

    async with prune_lock(pool):
        assert await poller.apply_retention() is None
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 5

    assert await poller.apply_retention() == Pruned(deliveries=3)
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 2


async def test_the_retention_tick_is_scheduled_only_when_asked_for(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    for hours, scheduled in ((0.0, False), (24.0, True)):
        poller = Poller(settings.model_copy(update={"prune_interval_hours": hours}), pool, redis_client)
        poller.start()
        try:
            job = poller.scheduler.get_job("prune")
            assert (job is not None) == scheduled
            if job is not None:
                assert job.trigger.interval.total_seconds() == hours * 3600
        finally:
            await poller.stop()
