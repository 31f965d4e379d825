"""Instants the scheduler cannot compute or store as aware times are a 422 naming the field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from core.db import Pool
from tests.factories import ASSISTANT_ID, insert_reminder

# Other values of the class the outside test tried (year 1, year 9999): just outside the
# documented range on both sides, and far outside.
OUT_OF_RANGE = [
    "1969-12-31T23:59:59Z",
    "0100-06-01T00:00:00+02:00",
    "2200-01-01T00:00:00Z",
    "5000-01-01T00:00:00Z",
]


def _one_time(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 5,
        "assistant_id": str(ASSISTANT_ID),
        "type": "one_time",
        "trigger_at": "2030-01-01T00:00:00Z",
        "payload": '{"text": "x"}',
    }
    return body | fields


def _recurring(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 5,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": "0 9 1 1 *",
        "payload": '{"text": "x"}',
    }
    return body | fields


def _names(response: httpx.Response, field: str) -> bool:
    return response.status_code == 422 and any(field in e["loc"] for e in response.json()["detail"])


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
async def test_create_refuses_times_out_of_range(api: httpx.AsyncClient, instant: str) -> None:
    assert _names(await api.post("/reminders/", json=_one_time(trigger_at=instant)), "trigger_at")
    assert _names(await api.post("/reminders/", json=_recurring(start_at=instant)), "start_at")
    assert _names(await api.post("/reminders/", json=_recurring(until=instant)), "until")


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
async def test_patch_and_snooze_refuse_times_out_of_range(
    api: httpx.AsyncClient, pool: Pool, instant: str
) -> None:
    once = (await api.post("/reminders/", json=_one_time())).json()["id"]
    series = (await api.post("/reminders/", json=_recurring())).json()["id"]
    assert _names(await api.patch(f"/reminders/{once}", json={"trigger_at": instant}), "trigger_at")
    assert _names(await api.patch(f"/reminders/{series}", json={"until": instant}), "until")
    assert _names(await api.post(f"/reminders/{series}/snooze", json={"until": instant}), "until")
    stored = await pool.fetch("SELECT next_run_at FROM reminders WHERE isfinite(next_run_at) IS NOT TRUE")
    assert stored == []


async def test_the_edges_of_the_range_are_accepted(api: httpx.AsyncClient) -> None:
    assert (
        await api.post("/reminders/", json=_one_time(trigger_at="1970-01-01T00:00:00Z"))
    ).status_code == 201
    late = _recurring(start_at="2199-06-01T00:00:00Z")
    created = await api.post("/reminders/", json=late)
    assert created.status_code == 201, created.text
    assert created.json()["next_run_at"] == "2200-01-01T09:00:00Z"


async def test_reading_a_row_with_an_infinite_time_is_not_a_500(api: httpx.AsyncClient, pool: Pool) -> None:
    # As written before the API refused such times.
    rid = await insert_reminder(pool, next_run_at=datetime(2030, 1, 1, tzinfo=UTC))
    await pool.execute(
        "UPDATE reminders SET next_run_at = '-infinity', trigger_at = 'infinity' WHERE id = $1", rid
    )
    for path in (f"/reminders/{rid}", "/reminders/user/123", "/reminders/scheduled"):
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "0001-01-01" not in response.text and "9999-12-31" not in response.text
    assert (await api.get(f"/reminders/{rid}")).json()["next_run_at"] is None
    assert (await api.get(f"/reminders/{uuid.uuid4()}")).status_code == 404
