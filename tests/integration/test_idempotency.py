"""A create retried with the same Idempotency-Key returns the first reminder, never a second."""

from __future__ import annotations

import asyncio

import httpx

from core.db import Pool
from tests.factories import ASSISTANT_ID

BODY = {
    "user_id": 5,
    "assistant_id": str(ASSISTANT_ID),
    "type": "one_time",
    "trigger_in": "PT2H",
    "payload": "{}",
}


async def test_a_retry_returns_the_first_result(api: httpx.AsyncClient, pool: Pool) -> None:
    headers = {"Idempotency-Key": "create-42"}
    first = await api.post("/reminders/", json=BODY, headers=headers)
    again = await api.post("/reminders/", json=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 1


async def test_concurrent_retries_make_one_reminder(api: httpx.AsyncClient, pool: Pool) -> None:
    headers = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(*(api.post("/reminders/", json=BODY, headers=headers) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 1


async def test_the_same_key_with_another_body_is_422(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k"}
    assert (await api.post("/reminders/", json=BODY, headers=headers)).status_code == 201
    other = await api.post("/reminders/", json={**BODY, "user_id": 6}, headers=headers)
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_keys_expire_after_a_day(api: httpx.AsyncClient, pool: Pool) -> None:
    headers = {"Idempotency-Key": "daily"}
    first = (await api.post("/reminders/", json=BODY, headers=headers)).json()
    await pool.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
    later = await api.post("/reminders/", json=BODY, headers=headers)
    assert later.status_code == 201 and later.json()["id"] != first["id"]


async def test_without_a_key_every_post_creates(api: httpx.AsyncClient, pool: Pool) -> None:
    for _ in range(2):
        assert (await api.post("/reminders/", json=BODY)).status_code == 201
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 2
