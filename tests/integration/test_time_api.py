"""Relative creation (trigger_in) and schedule previews over the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.factories import ASSISTANT_ID


def one_time(**fields: object) -> dict[str, object]:
    return {"user_id": 1, "assistant_id": str(ASSISTANT_ID), "type": "one_time", "payload": "{}", **fields}


@pytest.mark.parametrize("trigger_in", ["PT2H", 7200, "P0DT2H0M0S"])
async def test_trigger_in_is_stored_as_absolute_utc(api: httpx.AsyncClient, trigger_in: object) -> None:
    before = datetime.now(UTC)
    response = await api.post("/reminders/", json=one_time(trigger_in=trigger_in))
    assert response.status_code == 201, response.text
    trigger_at = datetime.fromisoformat(response.json()["trigger_at"])
    assert (
        before + timedelta(hours=2) - timedelta(seconds=5)
        <= trigger_at
        <= datetime.now(UTC) + timedelta(hours=2)
    )
    assert response.json()["next_run_at"] == response.json()["trigger_at"]
    assert "trigger_in" not in response.json()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"trigger_in": "PT0S"}, "trigger_in"),
        ({"trigger_in": "-PT5M"}, "trigger_in"),
        ({"trigger_in": "soon"}, "trigger_in"),
        ({"trigger_in": "PT1H", "trigger_at": "2030-01-01T00:00:00Z"}, "trigger_at"),
    ],
)
async def test_bad_trigger_in_is_422_naming_the_field(
    api: httpx.AsyncClient, fields: dict[str, object], field: str
) -> None:
    response = await api.post("/reminders/", json=one_time(**fields))
    assert response.status_code == 422
    assert field in {str(e["loc"][-1]) for e in response.json()["detail"]}


async def test_trigger_in_on_a_recurring_reminder_is_refused(api: httpx.AsyncClient) -> None:
    body = {**one_time(trigger_in="PT1H"), "type": "recurring", "cron_expression": "0 10 * * *"}
    response = await api.post("/reminders/", json=body)
    assert response.status_code == 422
    assert "trigger_in" in {str(e["loc"][-1]) for e in response.json()["detail"]}


async def test_preview_lists_fires_in_utc_and_local_time(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/reminders/preview", params={"cron": "0 10 * * *", "timezone": "Europe/Berlin", "count": 3}
    )
    assert response.status_code == 200, response.text
    fires = response.json()["fires"]
    assert len(fires) == 3
    for fire in fires:
        local = datetime.fromisoformat(fire["local"])
        assert (local.hour, local.minute) == (10, 0)
        assert datetime.fromisoformat(fire["utc"]) == local
    utcs = [datetime.fromisoformat(f["utc"]) for f in fires]
    assert utcs == sorted(utcs) and utcs[0] > datetime.now(UTC)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"cron": "61 * * * *"}, "cron"), ({"cron": "* * * * *", "timezone": "Mars/Base"}, "timezone")],
)
async def test_preview_of_a_bad_schedule_is_422(
    api: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await api.get("/reminders/preview", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


async def test_next_fires_of_a_reminder(api: httpx.AsyncClient) -> None:
    rec = (
        await api.post(
            "/reminders/",
            json={**one_time(), "type": "recurring", "cron_expression": "*/2 * * * * *"},
        )
    ).json()
    fires = (await api.get(f"/reminders/{rec['id']}/next", params={"count": 4})).json()["fires"]
    utcs = [datetime.fromisoformat(f["utc"]) for f in fires]
    assert len(utcs) == 4 and all(t.second % 2 == 0 for t in utcs)
    one = (await api.post("/reminders/", json=one_time(trigger_in="PT1H"))).json()
    single = (await api.get(f"/reminders/{one['id']}/next")).json()["fires"]
    assert [f["utc"] for f in single] == [one["trigger_at"]]
