"""A row the poller cannot plan or decrypt is set aside; every other reminder fires exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import orjson
import redis.asyncio as redis

from core.db import Pool
from core.metrics import Metrics
from core.queries import queries
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.factories import ASSISTANT_ID, insert_many_due, payload_cipher

GOOD = 3_000

# Each kind of row the database can hold but the scheduler cannot plan or encode, inserted with
# SQL as a broken writer (or an older release) would: (type, cron, zone, next_run_at, payload).
BAD_ROWS = {
    "minus_infinity": ("one_time", None, "UTC", "'-infinity'::timestamptz", None),
    "recurring_minus_infinity": ("recurring", "*/5 * * * *", "UTC", "'-infinity'::timestamptz", None),
    "unparsable_cron": ("recurring", "every tuesday", "UTC", "now() - interval '1 second'", None),
    "out_of_range_cron": ("recurring", "61 * * * *", "UTC", "now() - interval '1 second'", None),
    "unknown_zone": ("recurring", "0 * * * *", "Nowhere/Atlantis", "now() - interval '1 second'", None),
    "zone_folder": ("recurring", "0 * * * *", "Asia", "now() - interval '1 second'", None),
    # Zones the API took before it kept to the IANA places (core/zones.py).
    "not_a_place": ("recurring", "*/10 * * * *", "Factory", "now() - interval '1 second'", None),
    "machine_zone": ("recurring", "30 8 * * 1-5", "localtime", "now() - interval '1 second'", None),
    "undecryptable": ("one_time", None, "UTC", "now() - interval '1 second'", b"v1:garbage-not-a-token"),
}


async def _insert_bad(pool: Pool, kind: str) -> uuid.UUID:
    kind_type, cron, zone, next_run, ciphertext = BAD_ROWS[kind]
    cipher = payload_cipher()
    reminder_id = uuid.uuid4()
    await pool.execute(
        f"""
        INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type, trigger_at,
                               cron_expression, timezone, payload_ciphertext, payload_key_id,
                               status, next_run_at)
        VALUES ($1, 7, $2, $2, $3, CASE WHEN $3 = 'one_time' THEN {next_run} END, $4, $5, $6, $7,
                CASE WHEN $3 = 'one_time' THEN 'pending' ELSE 'active' END, {next_run})
        """,
        reminder_id,
        ASSISTANT_ID,
        kind_type,
        cron,
        zone,
        ciphertext if ciphertext is not None else cipher.encrypt('{"secret":"do-not-log"}'),
        cipher.key_id,
    )
    return reminder_id


async def test_bad_rows_inserted_during_a_burst_are_set_aside_and_the_rest_fire_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_many_due(pool, GOOD)
    metrics = Metrics()
    small_batches = settings.model_copy(update={"batch_size": 200})
    poller = Poller(small_batches, pool, redis_client, metrics=metrics)

    async def insert_while_draining() -> dict[str, uuid.UUID]:
        await asyncio.sleep(0.05)  # the drain has started: these land between its claims
        return {kind: await _insert_bad(pool, kind) for kind in BAD_ROWS}

    inserting = asyncio.create_task(insert_while_draining())
    await poller.poll()
    bad = await inserting
    # A second and third tick: whatever the first drain had passed by is claimed now, and a
    # quarantined row is never claimed again.
    await poller.poll()
    await poller.poll()

    events = [orjson.loads(raw) for raw in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    fired = Counter(event["payload"]["reminder_id"] for event in events)
    assert len(fired) == GOOD
    assert set(fired.values()) == {1}
    assert not {str(reminder_id) for reminder_id in bad.values()} & fired.keys()

    rows = await pool.fetch("SELECT id, status FROM reminders WHERE id = ANY($1::uuid[])", list(bad.values()))
    statuses: dict[uuid.UUID, str] = {row["id"]: row["status"] for row in rows}
    assert {kind: statuses[reminder_id] for kind, reminder_id in bad.items()} == dict.fromkeys(
        BAD_ROWS, "quarantined"
    )
    audits = await pool.fetch(
        "SELECT reminder_id, details FROM audit_log WHERE action = 'quarantine' ORDER BY at"
    )
    assert sorted(row["reminder_id"] for row in audits) == sorted(bad.values())
    details = {row["reminder_id"]: orjson.loads(row["details"]) for row in audits}
    assert details[bad["undecryptable"]]["reason"] == "payload"
    assert details[bad["unparsable_cron"]]["reason"] == "plan"
    assert all("do-not-log" not in orjson.dumps(d).decode() for d in details.values())
    assert metrics.quarantined.labels("plan")._value.get() == len(BAD_ROWS) - 1
    assert metrics.quarantined.labels("payload")._value.get() == 1
    assert await pool.fetchval("SELECT count(*) FROM reminders WHERE status IN ('pending', 'active')") == GOOD


async def test_an_infinite_row_does_not_stop_the_stats_or_the_wakeup(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    for kind in ("minus_infinity", "recurring_minus_infinity"):
        await _insert_bad(pool, kind)
    never = await _insert_bad(pool, "minus_infinity")
    await pool.execute("UPDATE reminders SET next_run_at = 'infinity' WHERE id = $1", never)
    backlog = await pool.fetchrow(queries["due_backlog"], None)
    assert backlog is not None and backlog["due"] == 2 and backlog["oldest"] is None
    wake = await pool.fetchrow(queries["next_due"])
    assert wake is not None and wake["next_run_at"] is None
    poller = Poller(settings, pool, redis_client)
    await poller.poll()
    assert await pool.fetchval("SELECT count(*) FROM reminders WHERE status = 'quarantined'") == 2


async def test_a_quarantined_reminder_reads_refuses_changes_and_cancels(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    rid = await _insert_bad(pool, "unknown_zone")
    await Poller(settings, pool, redis_client).poll()
    read = await api.get(f"/reminders/{rid}")
    assert read.status_code == 200 and read.json()["status"] == "quarantined"
    assert (await api.patch(f"/reminders/{rid}", json={"timezone": "UTC"})).status_code == 409
    assert (await api.patch(f"/reminders/{rid}", json={"status": "active"})).status_code == 409
    assert (await api.post(f"/reminders/{rid}/snooze", json={"for": "PT1H"})).status_code == 409
    assert (await api.delete(f"/reminders/{rid}")).status_code == 204
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", rid) == "cancelled"
