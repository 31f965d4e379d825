"""An API read of a row that does not decode (a time written with SQL outside years 1-9999) is a
409 for that reminder alone: the reads batched with it still answer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from core.db import Pool
from tests.factories import insert_reminder

pytestmark = pytest.mark.integration

LATER = datetime.now(UTC) + timedelta(days=1)


@pytest.mark.parametrize(
    "change", ["until = '12000-06-01 00:00:00+00'", "created_at = '0300-01-01 00:00:00+00 BC'"]
)
async def test_an_unreadable_row_fails_only_its_own_reads(
    pool: Pool, api: httpx.AsyncClient, change: str
) -> None:
    good = [await insert_reminder(pool, next_run_at=LATER, cron_expression="0 9 * * *") for _ in range(12)]
    bad = await insert_reminder(pool, next_run_at=LATER, cron_expression="0 9 * * *")
    await pool.execute(f"UPDATE reminders SET {change} WHERE id = $1", bad)

    # Concurrent GETs share one SELECT (core/store/reminders.py): the bad row must not fail the others'.
    ids: list[uuid.UUID] = [*good[:6], bad, *good[6:]]
    answers = await asyncio.gather(*(api.get(f"/reminders/{rid}") for rid in ids))
    for rid, answer in zip(ids, answers, strict=True):
        if rid == bad:
            assert answer.status_code == 409, answer.text
            assert "cannot read" in answer.json()["detail"]
        else:
            assert answer.status_code == 200, answer.text

    for other in (
        await api.get("/reminders/user/123"),
        await api.patch(f"/reminders/{bad}", json={"payload": '{"text": "x"}'}),
    ):
        assert other.status_code == 409, other.text
    # The way out that needs no SQL: a cancel, after which the row fires never again.
    cancelled = await api.delete(f"/reminders/{bad}")
    assert cancelled.status_code == 204, cancelled.text
    assert await pool.fetchval("SELECT status FROM reminders WHERE id = $1", bad) == "cancelled"
