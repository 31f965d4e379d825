"""Booleans are not integers, strings are not booleans: against the real API (issue 17, defect 10).

``user_id: true`` used to make a reminder of user 1 and ``"ack_required": "off"`` a
fire-and-forget one. Both create paths (the fast route and FastAPI's) give the same 422.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from core.db import Pool
from tests.factories import ASSISTANT_ID

JSON = {"Content-Type": "application/json"}
VIA_FASTAPI = {**JSON, "Idempotency-Key": "body-types"}  # declined by the fast create path

# Other values than the issue's: (field, a value of the wrong JSON type).
WRONG_CREATE = [
    ("user_id", False),
    ("user_id", "77"),
    ("misfire_grace_seconds", True),
    ("misfire_grace_seconds", "30"),
    ("max_runs", True),
    ("max_runs", "5"),
    ("ack_required", "no"),
    ("ack_required", "true"),
    ("ack_required", 0),
    ("ack_required", 1),
]
WRONG_PATCH = [
    ("misfire_grace_seconds", False),
    ("misfire_grace_seconds", "120"),
    ("max_runs", True),
    ("max_runs", "9"),
    ("ack_required", "yes"),
    ("ack_required", 1),
]


def _recurring(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 64,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": "0 18 * * 5",
        "payload": '{"text": "weekly review"}',
    }
    return body | fields


def _names(response: httpx.Response, field: str) -> bool:
    return response.status_code == 422 and any(e["loc"][-1] == field for e in response.json()["detail"])


@pytest.mark.parametrize(("field", "value"), WRONG_CREATE)
async def test_create_refuses_the_wrong_json_type_alike_on_both_paths(
    api: httpx.AsyncClient, pool: Pool, field: str, value: object
) -> None:
    fast = await api.post("/reminders/", json=_recurring(**{field: value}), headers=JSON)
    slow = await api.post("/reminders/", json=_recurring(**{field: value}), headers=VIA_FASTAPI)
    assert _names(fast, field), fast.text
    assert fast.json() == slow.json() and slow.status_code == 422
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 0


@pytest.mark.parametrize(("field", "value"), WRONG_PATCH)
async def test_patch_refuses_the_wrong_json_type(api: httpx.AsyncClient, field: str, value: object) -> None:
    created = await api.post("/reminders/", json=_recurring(max_runs=20))
    assert created.status_code == 201, created.text
    response = await api.patch(f"/reminders/{created.json()['id']}", json={field: value})
    assert _names(response, field), response.text
    assert (await api.get(f"/reminders/{created.json()['id']}")).json() == created.json()


@pytest.mark.parametrize("value", [True, False])
async def test_durations_are_not_booleans(api: httpx.AsyncClient, value: bool) -> None:
    once = {**_recurring(), "type": "one_time", "cron_expression": None, "trigger_in": value}
    assert _names(await api.post("/reminders/", json=once), "trigger_in")
    rid = (await api.post("/reminders/", json=_recurring())).json()["id"]
    assert _names(await api.post(f"/reminders/{rid}/snooze", json={"for": value}), "for")


async def test_numbers_the_schema_allows_are_still_taken(api: httpx.AsyncClient) -> None:
    """Unix seconds for a time and seconds for a duration stay, as the schema says."""
    at = int((datetime.now(UTC) + timedelta(days=2)).timestamp())
    for trigger_at in (at, str(at)):
        body = {**_recurring(), "type": "one_time", "cron_expression": None, "trigger_at": trigger_at}
        response = await api.post("/reminders/", json=body)
        assert response.status_code == 201, response.text
    relative = {**_recurring(), "type": "one_time", "cron_expression": None, "trigger_in": 5400}
    assert (await api.post("/reminders/", json=relative)).status_code == 201
    typed = await api.post(
        "/reminders/", json=_recurring(ack_required=False, max_runs=3, misfire_grace_seconds=0)
    )
    assert typed.status_code == 201, typed.text
    assert (typed.json()["ack_required"], typed.json()["max_runs"]) == (False, 3)
