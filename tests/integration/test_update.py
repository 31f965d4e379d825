"""PATCH changes a reminder's schedule, payload or end conditions; the next fire follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.db import Pool
from tests.factories import ASSISTANT_ID


async def create(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"user_id": 1, "assistant_id": str(ASSISTANT_ID), "payload": '{"v": 1}', **fields}
    response = await api.post("/reminders/", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_new_cron_and_zone_recompute_the_next_fire(api: httpx.AsyncClient, pool: Pool) -> None:
    rec = await create(api, type="recurring", cron_expression="0 10 * * *")
    response = await api.patch(
        f"/reminders/{rec['id']}", json={"cron_expression": "30 7 * * *", "timezone": "Asia/Tokyo"}
    )
    assert response.status_code == 200, response.text
    local = datetime.fromisoformat(response.json()["next_run_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (7, 30)
    actions = await pool.fetch("SELECT action, details FROM audit_log WHERE action = 'update'")
    assert len(actions) == 1 and '"v"' not in actions[0]["details"]


async def test_new_trigger_at_and_payload(api: httpx.AsyncClient) -> None:
    one = await create(api, type="one_time", trigger_in="PT1H")
    later = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    response = await api.patch(
        f"/reminders/{one['id']}", json={"trigger_at": later.isoformat(), "payload": '{"v": 2}'}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert datetime.fromisoformat(body["next_run_at"]) == later
    assert body["payload"] == '{"v":2}'


async def test_status_and_fields_change_together(api: httpx.AsyncClient) -> None:
    rec = await create(api, type="recurring", cron_expression="0 10 * * *")
    response = await api.patch(f"/reminders/{rec['id']}", json={"status": "paused", "max_runs": 5})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["max_runs"]) == ("paused", 5)


@pytest.mark.parametrize(
    ("kind", "change", "field"),
    [
        ("one_time", {"cron_expression": "* * * * *"}, "cron_expression"),
        ("one_time", {"max_runs": 3}, "max_runs"),
        ("recurring", {"trigger_at": "2030-01-01T00:00:00Z"}, "trigger_at"),
        ("recurring", {"timezone": None}, "timezone"),
        ("recurring", {"timezone": "Nowhere/City"}, "timezone"),
        ("recurring", {"cron_expression": "99 * * * *"}, "cron_expression"),
        ("recurring", {"payload": "[1]"}, "payload"),
        ("recurring", {"until": "2000-01-01T00:00:00Z"}, "until"),
        ("recurring", {"id": "x"}, "id"),
    ],
)
async def test_impossible_changes_are_422_naming_the_field(
    api: httpx.AsyncClient, kind: str, change: dict[str, Any], field: str
) -> None:
    fields: dict[str, Any] = (
        {"type": "one_time", "trigger_in": "PT1H"}
        if kind == "one_time"
        else {"type": "recurring", "cron_expression": "0 10 * * *"}
    )
    reminder = await create(api, **fields)
    response = await api.patch(f"/reminders/{reminder['id']}", json=change)
    assert response.status_code == 422, response.text
    assert field in {str(e["loc"][-1]) for e in response.json()["detail"]}


async def test_ended_reminders_cannot_be_changed(api: httpx.AsyncClient) -> None:
    rec = await create(api, type="recurring", cron_expression="0 10 * * *")
    await api.delete(f"/reminders/{rec['id']}")
    response = await api.patch(f"/reminders/{rec['id']}", json={"payload": "{}"})
    assert response.status_code == 409
