"""The live cap holds under concurrency, and each assistant's live count stays exact.

The cap is enforced in the create's statement, on a per-assistant counter kept by triggers
(migration 0012): N concurrent creates under a cap of C make exactly C minus what is live, on every
create path, and the counter equals COUNT(*) of the live rows after whatever changes a status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import redis.asyncio as redis

from api.app import create_app
from core import migrate
from core.db import Connection, Pool
from core.embedded.postgres import with_database
from core.queries import named
from core.settings import Settings
from core.states import LIVE_STATUSES
from core.store.reminders import LIVE_CAP, Creates, NewReminder, create_reminders
from poller.worker import Poller
from tests.conftest import TEST_API_KEY, ServiceUrls
from tests.factories import insert_reminder, new_reminder

CAP = 15
ALREADY_LIVE = 3
ASSISTANT_A = uuid.UUID("0c0c0c0c-0000-4000-8000-00000000000a")
ASSISTANT_B = uuid.UUID("0c0c0c0c-0000-4000-8000-00000000000b")
FAR = datetime.now(UTC) + timedelta(days=30)


def one_time(assistant: uuid.UUID, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user_id": 5,
        "assistant_id": str(assistant),
        "type": "one_time",
        "trigger_at": FAR.isoformat(),
        "payload": '{"n": 1}',
    }
    return {**data, **fields}


async def live_by_assistant(pool: Pool | Connection) -> dict[uuid.UUID, int]:
    rows = await pool.fetch(
        "SELECT assistant_id, count(*) AS n FROM reminders WHERE status = ANY($1::text[]) GROUP BY 1",
        list(LIVE_STATUSES),
    )
    return {row["assistant_id"]: row["n"] for row in rows}


async def counters(pool: Pool | Connection) -> dict[uuid.UUID, int]:
    rows = await pool.fetch("SELECT assistant_id, live FROM assistant_live_counts WHERE live <> 0")
    return {row["assistant_id"]: row["live"] for row in rows}


async def assert_exact(pool: Pool) -> None:
    assert await counters(pool) == await live_by_assistant(pool)


class Batches:
    """create_reminders as the app runs it, remembering how many rows each statement carried."""

    def __init__(self, live_cap: int) -> None:
        self.live_cap = live_cap
        self.sizes: list[int] = []

    async def run(
        self, db: Pool, rows: Sequence[NewReminder], live_cap: int
    ) -> dict[uuid.UUID, asyncpg.Record]:
        self.sizes.append(len(rows))
        return await create_reminders(db, rows, live_cap)


@asynccontextmanager
async def apps(
    settings: Settings, pool: Pool, batches: Batches, count: int = 1
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``count`` API apps on one database, as ``count`` API processes: each batches on its own."""
    async with AsyncExitStack() as stack:
        clients: list[httpx.AsyncClient] = []
        for _ in range(count):
            app = create_app(settings)
            app.state.pool = pool
            app.state.creates = Creates(batches.live_cap, batches.run)
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=app),
                        base_url="http://api",
                        headers={"X-API-Key": TEST_API_KEY},
                    )
                )
            )
        yield clients


async def _seed_a(pool: Pool) -> None:
    """Three live reminders of A (pending, active, paused) and three that are not."""
    for _ in range(ALREADY_LIVE):
        await insert_reminder(pool, next_run_at=FAR, assistant_id=ASSISTANT_A)
    await insert_reminder(pool, next_run_at=FAR, assistant_id=ASSISTANT_A, cron_expression="0 9 * * *")
    gone = [await insert_reminder(pool, next_run_at=FAR, assistant_id=ASSISTANT_A) for _ in range(3)]
    await pool.execute(
        "UPDATE reminders SET status = s.status FROM unnest($1::uuid[], $2::text[]) AS s(id, status)"
        " WHERE reminders.id = s.id",
        gone,
        ["completed", "cancelled", "quarantined"],
    )
    # One of the pending ones paused: still live. The recurring one cancelled: not.
    ids = await pool.fetch("SELECT id, type FROM reminders WHERE status = 'pending' ORDER BY id")
    await pool.execute("UPDATE reminders SET status = 'paused' WHERE id = $1", ids[0]["id"])
    await pool.execute("UPDATE reminders SET status = 'cancelled' WHERE type = 'recurring'")
    assert (await live_by_assistant(pool))[ASSISTANT_A] == ALREADY_LIVE


@pytest.mark.parametrize("path", ["fast", "fastapi", "idempotent"])
async def test_concurrent_creates_make_exactly_the_cap(settings: Settings, pool: Pool, path: str) -> None:
    await _seed_a(pool)
    capped = settings.model_copy(update={"max_live_reminders_per_assistant": CAP})
    batches = Batches(CAP)
    async with apps(capped, pool, batches, 2) as clients:

        async def create(n: int, assistant: uuid.UUID) -> httpx.Response:
            client = clients[n % 2]
            body = one_time(assistant, user_id=n)
            if path == "fast":  # exactly application/json, no Idempotency-Key: api/fast_paths.py
                return await client.post("/reminders/", json=body)
            headers = {"Content-Type": "application/json; charset=utf-8"}  # declined: FastAPI's route
            if path == "idempotent":
                headers["Idempotency-Key"] = f"create-{assistant}-{n}"
            return await client.post("/reminders/", content=orjson.dumps(body), headers=headers)

        # B has no reminder yet: its counter row is created by these creates, concurrently.
        wanted = [(n, ASSISTANT_A) for n in range(120)] + [(n, ASSISTANT_B) for n in range(120, 150)]
        responses = await asyncio.gather(*(create(n, a) for n, a in wanted))

    outcome = Counter((a, r.status_code) for (_, a), r in zip(wanted, responses, strict=True))
    assert outcome == {
        (ASSISTANT_A, 201): CAP - ALREADY_LIVE,
        (ASSISTANT_A, 409): 120 - (CAP - ALREADY_LIVE),
        (ASSISTANT_B, 201): CAP,
        (ASSISTANT_B, 409): 30 - CAP,
    }
    refused = next(r for r in responses if r.status_code == 409)
    assert refused.headers["content-type"] == "application/json"
    assert f"limit of {CAP} live" in refused.json()["detail"]
    assert await live_by_assistant(pool) == {ASSISTANT_A: CAP, ASSISTANT_B: CAP}
    await assert_exact(pool)
    if path != "idempotent":  # the shared statements did carry several creates each
        assert max(batches.sizes) > 1


async def test_a_replayed_create_at_the_cap_returns_the_first_reminder(
    settings: Settings, pool: Pool
) -> None:
    capped = settings.model_copy(update={"max_live_reminders_per_assistant": 1})
    async with apps(capped, pool, Batches(1)) as (api,):
        headers = {"Idempotency-Key": "only-one"}
        first = await api.post("/reminders/", json=one_time(ASSISTANT_A), headers=headers)
        again = await api.post("/reminders/", json=one_time(ASSISTANT_A), headers=headers)
        other = await api.post("/reminders/", json=one_time(ASSISTANT_A), headers={"Idempotency-Key": "x"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json()["id"] == first.json()["id"]
    # The refused create stored no key: retried once a place is free, it is created.
    await pool.execute("UPDATE reminders SET status = 'cancelled'")
    async with apps(capped, pool, Batches(1)) as (api,):
        retried = await api.post("/reminders/", json=one_time(ASSISTANT_A), headers={"Idempotency-Key": "x"})
    assert retried.status_code == 201
    await assert_exact(pool)


async def test_one_statement_admits_the_rows_within_the_cap_in_order(pool: Pool) -> None:
    """A shared statement (core/store/reminders.py) admits each create on its own: the first ones that fit."""
    await _seed_a(pool)

    def row(assistant: uuid.UUID) -> NewReminder:
        return new_reminder(FAR, assistant_id=assistant, created_by_assistant_id=assistant)

    def optimistic(rows: list[NewReminder]) -> tuple[Any, ...]:
        columns = {f.name: [getattr(r, f.name) for r in rows] for f in dataclasses.fields(NewReminder)}
        return named["create_reminders"].args({**columns, "live_cap": CAP})

    # Far from the cap, the optimistic statement writes the rows at once.
    assert len(await create_reminders(pool, [row(ASSISTANT_A)], CAP)) == 1
    rows = [row(ASSISTANT_A if n % 2 else ASSISTANT_B) for n in range(40)]
    # Past it, that statement is refused whole (the trigger checks under the counter's lock)...
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await pool.fetch(named["create_reminders"].sql, *optimistic(rows))
    assert refused.value.constraint_name == LIVE_CAP
    # ...and create_reminders runs it again exact: A has 4 live, so its first 11 rows; B its first 15.
    written = await create_reminders(pool, rows, CAP)
    admitted = Counter((r.assistant_id, r.id in written) for r in rows)
    assert admitted == {
        (ASSISTANT_A, True): 11,
        (ASSISTANT_A, False): 9,
        (ASSISTANT_B, True): 15,
        (ASSISTANT_B, False): 5,
    }
    # The earlier rows of each assistant, in the statement's order.
    assert [r.id in written for r in rows] == [n < 22 or (n % 2 == 0 and n < 30) for n in range(40)]
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'create'") == len(written) + 1
    # No cap: everything.
    assert len(await create_reminders(pool, [row(ASSISTANT_A) for _ in range(5)], 0)) == 5
    await assert_exact(pool)


async def test_the_count_stays_exact_through_every_change_of_status(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=10)
    ids: dict[str, str] = {}
    for name, assistant, fields in (
        ("acked", ASSISTANT_A, {"trigger_at": soon.isoformat()}),
        ("no_ack", ASSISTANT_A, {"trigger_at": soon.isoformat(), "ack_required": False}),
        ("snoozed", ASSISTANT_B, {"trigger_at": soon.isoformat()}),
        ("paused", ASSISTANT_B, {}),
        ("cancelled", ASSISTANT_B, {}),
        ("kept", ASSISTANT_B, {}),
        (
            "completed_by_ack",
            ASSISTANT_A,
            {"type": "recurring", "trigger_at": None, "cron_expression": "* * * * *"},
        ),
    ):
        response = await api.post("/reminders/", json=one_time(assistant, **fields))
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    await assert_exact(pool)
    # Through the API: pause, resume, pause again, cancel, snooze.
    assert (await api.patch(f"/reminders/{ids['paused']}", json={"status": "paused"})).status_code == 200
    assert (await api.patch(f"/reminders/{ids['paused']}", json={"status": "active"})).status_code == 200
    assert (await api.patch(f"/reminders/{ids['paused']}", json={"status": "paused"})).status_code == 200
    assert (await api.delete(f"/reminders/{ids['cancelled']}")).status_code == 204
    await assert_exact(pool)
    # The poller: one-time fires (one completes at once, one waits for its ack), recurring
    # reminders ending by max_runs and by until, and a row it cannot plan, quarantined.
    t0 = (soon + timedelta(minutes=1)).replace(second=0, microsecond=0)
    ended_by_runs = await insert_reminder(pool, next_run_at=t0, cron_expression="* * * * *", max_runs=1)
    ended_by_until = await insert_reminder(
        pool, next_run_at=t0, cron_expression="* * * * *", until=t0 + timedelta(seconds=30)
    )
    broken = await insert_reminder(
        pool, next_run_at=t0, cron_expression="* * * * *", timezone="Nowhere/Atlantis"
    )
    await assert_exact(pool)
    await Poller(settings, pool, redis_client).poll(now=t0)
    statuses = {str(r["id"]): r["status"] for r in await pool.fetch("SELECT id, status FROM reminders")}
    assert statuses[ids["no_ack"]] == "completed" and statuses[ids["acked"]] == "active"
    assert statuses[str(ended_by_runs)] == statuses[str(ended_by_until)] == "completed"
    assert statuses[str(broken)] == "quarantined"
    await assert_exact(pool)
    # Acks: a one-time event completes its reminder; a recurring one asked to complete.
    for name in ("acked", "completed_by_ack"):
        event = await pool.fetchval(
            "SELECT event_id FROM deliveries WHERE reminder_id = $1 ORDER BY scheduled_for LIMIT 1",
            uuid.UUID(ids[name]),
        )
        assert event is not None, name
        ack = await api.post(
            f"/reminders/{ids[name]}/ack", json={"event_id": str(event), "action": "complete"}
        )
        assert ack.status_code == 200, ack.text
    # The snoozed one fired; snoozed, it is pending again.
    snooze = await api.post(f"/reminders/{ids['snoozed']}/snooze", json={"for": "PT1H"})
    assert snooze.status_code == 200, snooze.text
    await assert_exact(pool)
    # Outside the API: several assistants' statuses in one statement, deletes, a truncate.
    await pool.execute("UPDATE reminders SET status = 'cancelled' WHERE status = 'paused'")
    await pool.execute("UPDATE reminders SET status = 'pending' WHERE id = $1", broken)
    await pool.execute("DELETE FROM reminders WHERE id = $1 OR status = 'completed'", uuid.UUID(ids["kept"]))
    await assert_exact(pool)
    await pool.execute("TRUNCATE reminders")
    await assert_exact(pool)
    assert await counters(pool) == {}


async def test_the_migration_counts_what_is_live_already(service_urls: ServiceUrls) -> None:
    admin = await asyncpg.connect(service_urls.database_url)
    name = f"reminders_live_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(service_urls.database_url, name)
    try:
        await asyncio.to_thread(migrate.upgrade, url, "0011")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                """
                INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type,
                                       trigger_at, payload, status, next_run_at)
                SELECT gen_random_uuid(), g, a, a, 'one_time', now(), '{}',
                       ($2::text[])[1 + g % 6], now()
                FROM generate_series(1, 60) AS g, unnest($1::uuid[]) AS a
                """,
                [ASSISTANT_A, ASSISTANT_B],
                ["pending", "active", "paused", "completed", "cancelled", "quarantined"],
            )
            await asyncio.to_thread(migrate.upgrade, url)
            assert await counters(conn) == {ASSISTANT_A: 30, ASSISTANT_B: 30}
            assert await counters(conn) == await live_by_assistant(conn)
            await asyncio.to_thread(migrate.downgrade, url, "0011")
            assert await conn.fetchval("SELECT to_regclass('assistant_live_counts')") is None
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
