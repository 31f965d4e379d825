"""Concurrent creates and reads share statements (core/store/reminders.py, batching.py): each
gets its own row, or error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import create_app
from core.db import Pool
from core.settings import Settings
from core.store import reminders as store
from core.store.reminders import Creates, NewReminder, Reads, create_reminders
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID, new_reminder


def row(
    *, grace: int = 60, guess: datetime | None = None, next_run_at: datetime | None = None
) -> NewReminder:
    """create_reminders' values for one one-time reminder an hour ahead (or at ``next_run_at``)."""
    return new_reminder(
        next_run_at or datetime.now(UTC) + timedelta(hours=1),
        misfire_grace_seconds=grace,
        guess=guess,
        user_id=7,
        payload='{"text": "hi"}',
        details='{"type": "one_time"}',
    )


def count_batches(monkeypatch: pytest.MonkeyPatch, runner: str) -> list[int]:
    """The size of every batch the real ``core.store.reminders.<runner>`` runs from now on."""
    sizes: list[int] = []
    real = getattr(store, runner)

    async def counted(db: Any, items: Sequence[Any], *args: Any) -> dict[uuid.UUID, asyncpg.Record]:
        sizes.append(len(items))
        result: dict[uuid.UUID, asyncpg.Record] = await real(db, items, *args)
        return result

    monkeypatch.setattr(store, runner, counted)
    return sizes


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every create batch written."""
    return count_batches(monkeypatch, "create_reminders")


async def test_concurrent_creates_share_statements_and_each_gets_its_row(
    pool: Pool, statements: list[int]
) -> None:
    creates = Creates()
    rows = [row() for _ in range(40)]
    written = await asyncio.gather(*(creates.create(pool, r) for r in rows))
    assert [w["id"] for w in written if w is not None] == [r.id for r in rows]
    assert sum(statements) == 40 and len(statements) < 40, statements
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 40
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'create'") == 40


async def test_batches_are_bounded(pool: Pool, statements: list[int]) -> None:
    creates = Creates(max_batch=5)
    await asyncio.gather(*(creates.create(pool, row()) for _ in range(23)))
    assert max(statements) <= 5 and sum(statements) == 23


async def test_a_bad_row_fails_only_its_own_create(pool: Pool) -> None:
    creates = Creates()
    good = [row() for _ in range(5)]
    bad = row(grace=-1)  # refused by reminders_misfire_grace_check
    results = await asyncio.gather(
        *(creates.create(pool, r) for r in [*good[:3], bad, *good[3:]]), return_exceptions=True
    )
    assert isinstance(results[3], asyncpg.CheckViolationError)
    assert [r["id"] for r in results if isinstance(r, asyncpg.Record)] == [g.id for g in good]
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 5
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == 5


async def test_a_refused_clock_guess_comes_back_as_none(pool: Pool) -> None:
    creates = Creates()
    past = datetime.now(UTC) - timedelta(minutes=1)
    # Guessed from an hour ago, with a "next fire" already past: the insert refuses it.
    refused = row(guess=past - timedelta(hours=1), next_run_at=past)
    kept = row(guess=datetime.now(UTC) - timedelta(seconds=1))
    results = await asyncio.gather(creates.create(pool, refused), creates.create(pool, kept))
    assert results[0] is None
    assert results[1] is not None and results[1]["id"] == kept.id
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == 1


async def test_a_cancelled_create_does_not_take_the_batch_down(pool: Pool) -> None:
    creates = Creates()
    rows = [row() for _ in range(10)]
    tasks = [asyncio.ensure_future(creates.create(pool, r)) for r in rows]
    await asyncio.sleep(0)
    tasks[4].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[4], asyncio.CancelledError)
    assert all(isinstance(r, asyncpg.Record) for i, r in enumerate(results) if i != 4)
    # Its row went in with the batch it was already part of: created, as after a lost reply.
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 10


async def test_the_api_batches_concurrent_creates(
    settings: Settings, pool: Pool, statements: list[int]
) -> None:
    app = create_app(settings)
    app.state.pool = pool
    body = {
        "user_id": 5,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": "0 10 * * *",
        "timezone": "Europe/Berlin",
        "payload": '{"text": "standup"}',
    }
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:
        responses = await asyncio.gather(*(client.post("/reminders/", json=body) for _ in range(30)))
    assert [r.status_code for r in responses] == [201] * 30
    assert len({r.json()["id"] for r in responses}) == 30
    assert sum(statements) == 30 and len(statements) < 30, statements


async def test_concurrent_reads_share_statements(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = count_batches(monkeypatch, "fetch_reminders")
    rows = [row() for _ in range(20)]
    await create_reminders(pool, rows)
    missing = uuid.uuid4()
    reader = Reads()
    found = await asyncio.gather(*(reader.get(pool, r.id) for r in rows), reader.get(pool, missing))
    assert [f["id"] for f in found[:-1] if f is not None] == [r.id for r in rows]
    assert found[-1] is None
    assert sum(sizes) == 21 and len(sizes) < 21, sizes
