"""Rows that fail at fetch time, not at plan time, stop no claim, sweep or redelivery.

A time PostgreSQL keeps but Python's datetime cannot (before year 1, from year 10000) makes
asyncpg raise while decoding the whole result; a payload no key decrypts fails the rebuild of a
delivery's event. Each such row is quarantined (reason ``decode`` or ``payload``), every other
reminder fires, is redelivered and is swept exactly as usual.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import redis.asyncio as redis

from cli.status import collect
from core.db import Pool
from core.metrics import Metrics
from core.queries import queries
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.factories import insert_many_due, insert_reminder

GOOD = 2_000

# Column values PostgreSQL accepts and asyncpg cannot decode, on a reminder due now.
UNREADABLE = {
    "next_run_at_bc": "next_run_at = '0044-03-15 12:00:00+00 BC'",
    "until_past_9999": "until = '20000-01-01 00:00:00+00'",
    "until_bc": "until = '0500-01-01 00:00:00+00 BC'",
    "created_at_past_9999": "created_at = '10000-01-01 00:00:00+00'",
    "created_at_at_the_limit": "created_at = '294276-12-31 23:59:59+00'",
}


async def _insert_unreadable(pool: Pool, change: str, cron: str | None = "0 10 * * *") -> uuid.UUID:
    # In one transaction: a claim running meanwhile must never see the row while it is still readable.
    async with pool.acquire() as conn, conn.transaction():
        reminder_id = await insert_reminder(
            conn, next_run_at=datetime.now(UTC) - timedelta(seconds=1), cron_expression=cron
        )
        await conn.execute(f"UPDATE reminders SET {change} WHERE id = $1", reminder_id)
    return reminder_id


async def _fired(redis_client: redis.Redis) -> Counter[tuple[str, int]]:
    events = [orjson.loads(raw) for raw in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    return Counter((e["payload"]["reminder_id"], e["attempt"]) for e in events)


async def test_unreadable_rows_inserted_during_a_burst_are_set_aside_and_the_rest_fire_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_many_due(pool, GOOD)
    metrics = Metrics()
    poller = Poller(settings.model_copy(update={"batch_size": 200}), pool, redis_client, metrics=metrics)
    # Due before the drain starts too: the first batch itself holds unreadable rows.
    early = {kind: await _insert_unreadable(pool, change) for kind, change in UNREADABLE.items()}

    async def insert_while_draining() -> dict[str, uuid.UUID]:
        await asyncio.sleep(0.05)
        return {kind: await _insert_unreadable(pool, change, None) for kind, change in UNREADABLE.items()}

    inserting = asyncio.create_task(insert_while_draining())
    await poller.poll()
    late = await inserting
    await poller.poll()
    await poller.poll()

    bad = [*early.values(), *late.values()]
    fired = await _fired(redis_client)
    assert len(fired) == GOOD
    assert set(fired.values()) == {1}
    assert not {str(r) for r in bad} & {reminder for reminder, _ in fired}
    statuses = await pool.fetch("SELECT DISTINCT status FROM reminders WHERE id = ANY($1::uuid[])", bad)
    assert [r["status"] for r in statuses] == ["quarantined"]
    audits = await pool.fetch("SELECT reminder_id, details FROM audit_log WHERE action = 'quarantine'")
    assert sorted(r["reminder_id"] for r in audits) == sorted(bad)
    assert {orjson.loads(r["details"])["reason"] for r in audits} == {"decode"}
    assert metrics.quarantined.labels("decode")._value.get() == len(bad)
    assert await pool.fetchval("SELECT count(*) FROM reminders WHERE status IN ('pending', 'active')") == GOOD


async def test_a_time_past_9999_does_not_stop_the_wakeup_or_the_stats(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    far = await insert_reminder(pool, next_run_at=datetime.now(UTC) + timedelta(days=1))
    await pool.execute("UPDATE reminders SET next_run_at = '12000-01-01 00:00:00+00' WHERE id = $1", far)
    await _insert_unreadable(pool, UNREADABLE["next_run_at_bc"])
    wake = await pool.fetchrow(queries["next_due"])
    assert wake is not None and wake["next_run_at"] is None
    backlog = await pool.fetchrow(queries["due_backlog"], None)
    assert backlog is not None and backlog["due"] == 1 and backlog["oldest"] is None
    metrics = Metrics()
    await Poller(settings, pool, redis_client, metrics=metrics).poll()
    assert metrics.errors.labels("poller", "unexpected")._value.get() == 0
    # Never due (as a +infinity one): it stays as it is, and `reminders status` shows it apart.
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", far) == "pending"
    infinite = await insert_reminder(pool, next_run_at=datetime.now(UTC) + timedelta(days=1))
    await pool.execute("UPDATE reminders SET next_run_at = 'infinity' WHERE id = $1", infinite)
    async with pool.acquire() as conn:
        status = await collect(conn, redis_client)  # type: ignore[arg-type]
    assert status.never_due == 2 and status.to_json()["never_due"] == 2


async def test_unreadable_reminders_do_not_stop_redeliveries_or_the_sweep_of_the_others(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    fast = settings.model_copy(update={"ack_timeout": 0.2, "max_attempts": 5, "sweep_after": 0.2})
    metrics = Metrics()
    poller = Poller(fast, pool, redis_client, metrics=metrics)
    due = datetime.now(UTC) - timedelta(seconds=1)
    good = [await insert_reminder(pool, next_run_at=due) for _ in range(6)]
    stray = [await insert_reminder(pool, next_run_at=due) for _ in range(3)]
    old = await insert_reminder(pool, next_run_at=due)
    undecryptable = await insert_reminder(pool, next_run_at=due)
    stray_undecryptable = await insert_reminder(pool, next_run_at=due)
    await poller.poll()
    assert len(await _fired(redis_client)) == 12

    # Broken after their fire, by hand or by a key dropped from the ring.
    await pool.execute("UPDATE reminders SET created_at = '10000-01-01 00:00:00+00' WHERE id = $1", old)
    await pool.execute(
        "UPDATE reminders SET payload_ciphertext = 'v1:garbage-not-a-token', payload = NULL"
        " WHERE id = ANY($1::uuid[])",
        [undecryptable, stray_undecryptable],
    )
    # As if Redis had never confirmed these: pending, for the sweep.
    await pool.execute(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = NULL,"
        " updated_at = now() - interval '1 hour' WHERE reminder_id = ANY($1::uuid[])",
        [*stray, stray_undecryptable],
    )
    await asyncio.sleep(0.35)
    await poller.poll()

    fired = await _fired(redis_client)
    assert {(str(r), 2) for r in good} <= fired.keys()
    assert not {(str(r), 2) for r in (old, undecryptable)} & fired.keys()
    swept = await pool.fetch("SELECT state FROM deliveries WHERE reminder_id = ANY($1::uuid[])", stray)
    assert [r["state"] for r in swept] == ["sent"] * 3
    bad = [old, undecryptable, stray_undecryptable]
    rows = await pool.fetch("SELECT id, status FROM reminders WHERE id = ANY($1::uuid[])", bad)
    assert {r["status"] for r in rows} == {"quarantined"}
    reasons = await pool.fetch(
        "SELECT reminder_id, details->>'reason' AS reason FROM audit_log WHERE action = 'quarantine'"
    )
    assert {r["reminder_id"]: r["reason"] for r in reasons} == {
        old: "decode",
        undecryptable: "payload",
        stray_undecryptable: "payload",
    }
    assert metrics.errors.labels("poller", "unexpected")._value.get() == 0
    assert metrics.errors.labels("poller", "payload")._value.get() == 0
    # Set aside for a repair: their deliveries stay as they were, and no later tick takes them.
    await asyncio.sleep(0.5)
    await poller.poll()
    assert metrics.quarantined.labels("payload")._value.get() == 2
