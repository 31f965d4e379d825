"""The claim: every due reminder fires exactly once, however many pollers run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import redis.asyncio as redis

from core.db import Pool
from core.events import format_time
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.factories import claim_unconfirmed, insert_many_due, insert_reminder


async def test_two_pollers_fire_5000_due_reminders_exactly_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_many_due(pool, 5000)
    pollers = [Poller(settings.model_copy(update={"batch_size": 200}), pool, redis_client) for _ in range(2)]
    recorded = await asyncio.gather(*(p.poll() for p in pollers))
    assert sum(recorded) == 5000
    assert all(n > 0 for n in recorded), "both pollers should have claimed work side by side"

    events = [orjson.loads(e) for e in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    reminder_ids = [e["payload"]["reminder_id"] for e in events]
    assert len(events) == 5000
    assert len(set(reminder_ids)) == 5000
    assert len({e["event_id"] for e in events}) == 5000

    states = await pool.fetch("SELECT state, count(*) FROM deliveries GROUP BY state")
    assert {r["state"]: r["count"] for r in states} == {"sent": 5000}
    remaining = await pool.fetchval("SELECT count(*) FROM reminders WHERE next_run_at <= now()")
    assert remaining == 0


async def test_recurring_moves_to_next_fire_and_one_time_waits_for_ack(pool: Pool) -> None:
    # The claim runs on an injected database clock, so the result does not depend on the second.
    now = datetime(2030, 1, 1, 10, 0, 5, tzinfo=UTC)
    one = await insert_reminder(pool, next_run_at=now - timedelta(seconds=1))
    rec = await insert_reminder(
        pool, next_run_at=now - timedelta(seconds=1), cron_expression="*/10 * * * * *"
    )
    result = await claim_unconfirmed(pool, now)
    assert result.claimed == 2
    one_row = await pool.fetchrow("SELECT * FROM reminders WHERE id = $1", one)
    rec_row = await pool.fetchrow("SELECT * FROM reminders WHERE id = $1", rec)
    assert one_row is not None and rec_row is not None
    assert (one_row["status"], one_row["next_run_at"]) == ("active", None)
    assert one_row["last_triggered_at"] == now
    assert (rec_row["status"], rec_row["next_run_at"]) == ("active", now + timedelta(seconds=5))
    assert (await claim_unconfirmed(pool, now)).claimed == 0


async def test_claim_uses_the_given_clock_not_the_pollers(pool: Pool) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    await insert_reminder(pool, next_run_at=soon)
    assert (await claim_unconfirmed(pool)).claimed == 0
    assert (await claim_unconfirmed(pool, soon)).claimed == 1


async def test_paused_cancelled_and_future_reminders_do_not_fire(pool: Pool) -> None:
    past = datetime.now(UTC) - timedelta(seconds=5)
    paused = await insert_reminder(pool, next_run_at=past, cron_expression="* * * * *")
    cancelled = await insert_reminder(pool, next_run_at=past)
    await pool.execute("UPDATE reminders SET status = 'paused' WHERE id = $1", paused)
    await pool.execute("UPDATE reminders SET status = 'cancelled' WHERE id = $1", cancelled)
    await insert_reminder(pool, next_run_at=datetime.now(UTC) + timedelta(minutes=5))
    assert (await claim_unconfirmed(pool)).claimed == 0


async def test_missed_fires_catch_up_once_by_default(pool: Pool) -> None:
    now = datetime(2030, 1, 1, 12, 2, 30, tzinfo=UTC)  # injected; no */5 fire within the grace
    rid = await insert_reminder(pool, next_run_at=now - timedelta(hours=3), cron_expression="*/5 * * * *")
    first = await claim_unconfirmed(pool, now)
    assert [o.late for o in first.occurrences] == [True]
    assert first.skipped == 36  # 09:02:30 itself and 09:05 .. 11:55; 12:00 goes out late
    next_run = await pool.fetchval("SELECT next_run_at FROM reminders WHERE id = $1", rid)
    assert next_run == datetime(2030, 1, 1, 12, 5, tzinfo=UTC)


async def test_duplicate_occurrence_is_not_recorded_twice(pool: Pool) -> None:
    when = datetime.now(UTC) - timedelta(seconds=1)
    rid = await insert_reminder(pool, next_run_at=when, cron_expression="* * * * *")
    assert len((await claim_unconfirmed(pool)).occurrences) == 1
    # Put the reminder back on the same occurrence, as a confused writer might.
    await pool.execute("UPDATE reminders SET next_run_at = $2 WHERE id = $1", rid, when)
    again = await claim_unconfirmed(pool)
    assert again.claimed == 1 and again.occurrences == []
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_one_poller_draining_in_several_lanes_fires_each_reminder_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_many_due(pool, 3000)
    poller = Poller(settings.model_copy(update={"batch_size": 100, "claim_lanes": 3}), pool, redis_client)
    assert await poller.poll() == 3000
    events = [orjson.loads(e) for e in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert len(events) == 3000
    assert len({e["event_id"] for e in events}) == 3000
    states = await pool.fetch("SELECT state, count(*) FROM deliveries GROUP BY state")
    assert {r["state"]: r["count"] for r in states} == {"sent": 3000}


async def test_each_fire_is_audited_with_its_event_id_time_and_lateness(pool: Pool) -> None:
    # Its time text must match format_time, as in the events.
    now = datetime(2030, 1, 1, 10, 0, 5, tzinfo=UTC)
    whole = await insert_reminder(pool, next_run_at=now - timedelta(seconds=1))
    with_millis = await insert_reminder(pool, next_run_at=now - timedelta(seconds=2, microseconds=-4567))
    late = await insert_reminder(pool, next_run_at=now - timedelta(hours=1, microseconds=999))
    result = await claim_unconfirmed(pool, now)
    by_reminder = {o.reminder_id: o for o in result.occurrences}
    rows = await pool.fetch("SELECT actor, reminder_id, details FROM audit_log WHERE action = 'fire'")
    assert len(rows) == 3
    for row in rows:
        occurrence = by_reminder[row["reminder_id"]]
        assert row["actor"] == "poller"
        assert orjson.loads(row["details"]) == {
            "event_id": str(occurrence.event_id),
            "scheduled_for": format_time(occurrence.scheduled_for),
            "late": occurrence.late,
        }
    texts = {r["reminder_id"]: orjson.loads(r["details"])["scheduled_for"] for r in rows}
    assert texts[whole] == "2030-01-01T10:00:04Z"
    assert texts[with_millis] == "2030-01-01T10:00:03.004Z"
    assert texts[late] == "2030-01-01T09:00:04.999Z"
    assert by_reminder[late].late and not by_reminder[whole].late
