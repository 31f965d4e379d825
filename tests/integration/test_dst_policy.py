"""A reminder's dst_policy over the API and through the poller's claim (issue 5).

Berlin 2027: 02:00-03:00 local is skipped on 03-28 and repeated on 10-31. ``30 2 * * *`` fires
at 00:30Z in summer (CEST) and 01:30Z in winter (CET).
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from core.db import Pool
from tests.factories import ASSISTANT_ID, claim_unconfirmed, insert_reminder


def recurring(**fields: object) -> dict[str, object]:
    return {
        "user_id": 1,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "payload": "{}",
        **fields,
    }


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def next_fires(api: httpx.AsyncClient, reminder_id: str, count: int) -> list[datetime]:
    response = await api.get(f"/reminders/{reminder_id}/next", params={"count": count})
    assert response.status_code == 200, response.text
    return [datetime.fromisoformat(f["utc"]) for f in response.json()["fires"]]


async def test_default_policy_is_returned(api: httpx.AsyncClient) -> None:
    created = await api.post("/reminders/", json=recurring())
    assert created.status_code == 201, created.text
    assert created.json()["dst_policy"] == {"gap": "shift", "repeated": "first"}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # The skipped 02:30 of 03-28 goes out right after the jump (03:00 CEST), or not at all.
        ({"gap": "shift"}, ["2027-03-27 01:30", "2027-03-28 01:00", "2027-03-29 00:30"]),
        ({"gap": "skip"}, ["2027-03-27 01:30", "2027-03-29 00:30", "2027-03-30 00:30"]),
    ],
)
async def test_gap_policy_decides_the_skipped_fire(
    api: httpx.AsyncClient, policy: dict[str, str], expected: list[str]
) -> None:
    created = await api.post(
        "/reminders/", json=recurring(start_at="2027-03-27T00:00:00Z", dst_policy=policy)
    )
    assert created.status_code == 201, created.text
    assert created.json()["dst_policy"]["gap"] == policy["gap"]
    assert await next_fires(api, created.json()["id"], 3) == [utc(t) for t in expected]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"repeated": "first"}, ["2027-10-30 00:30", "2027-10-31 00:30", "2027-11-01 01:30"]),
        ({"repeated": "both"}, ["2027-10-30 00:30", "2027-10-31 00:30", "2027-10-31 01:30"]),
    ],
)
async def test_repeated_policy_decides_the_second_pass(
    api: httpx.AsyncClient, policy: dict[str, str], expected: list[str]
) -> None:
    created = await api.post(
        "/reminders/", json=recurring(start_at="2027-10-30T00:00:00Z", dst_policy=policy)
    )
    assert created.status_code == 201, created.text
    assert await next_fires(api, created.json()["id"], 3) == [utc(t) for t in expected]


async def test_patch_changes_one_key_and_recomputes_the_next_fire(api: httpx.AsyncClient) -> None:
    # Starting on the spring day itself, the next fire is the shifted 03:00 CEST.
    created = (
        await api.post(
            "/reminders/",
            json=recurring(start_at="2027-03-28T00:00:00Z", dst_policy={"repeated": "both"}),
        )
    ).json()
    assert created["next_run_at"] == "2027-03-28T01:00:00Z"
    patched = await api.patch(f"/reminders/{created['id']}", json={"dst_policy": {"gap": "skip"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["dst_policy"] == {"gap": "skip", "repeated": "both"}
    assert patched.json()["next_run_at"] == "2027-03-29T00:30:00Z"
    history = (await api.get(f"/reminders/{created['id']}/history")).json()["audit"]["items"]
    assert history[0]["action"] == "update" and history[0]["details"]["fields"] == ["dst_policy"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (recurring(dst_policy={"gap": "later"}), "gap"),
        (recurring(dst_policy={"repeated": "twice"}), "repeated"),
        (recurring(dst_policy={"gap": "skip", "fold": 1}), "fold"),
        (recurring(dst_policy="skip"), "dst_policy"),
        (
            {**recurring(dst_policy={"gap": "skip"}), "type": "one_time", "cron_expression": None,
             "trigger_at": "2030-01-01T00:00:00Z"},
            "dst_policy",
        ),
    ],
)  # fmt: skip
async def test_bad_policy_is_422_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await api.post("/reminders/", json=body)
    assert response.status_code == 422, response.text
    assert field in {str(err["loc"][-1]) for err in response.json()["detail"]}


async def test_patching_a_one_time_reminders_policy_is_422(api: httpx.AsyncClient) -> None:
    one = (
        await api.post(
            "/reminders/",
            json={**recurring(), "type": "one_time", "cron_expression": None, "trigger_in": "PT1H"},
        )
    ).json()
    response = await api.patch(f"/reminders/{one['id']}", json={"dst_policy": {"gap": "skip"}})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == "dst_policy"


async def test_preview_takes_the_policy(api: httpx.AsyncClient) -> None:
    response = await api.get(
        "/reminders/preview",
        params={"cron": "0 10 * * *", "timezone": "Europe/Berlin", "dst_gap": "skip", "dst_repeated": "both"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["dst_policy"] == {"gap": "skip", "repeated": "both"}
    bad = await api.get("/reminders/preview", params={"cron": "0 10 * * *", "dst_gap": "maybe"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "dst_gap"]


@pytest.mark.parametrize(
    ("gap", "repeated", "scheduled_for", "expected_next"),
    [
        ("shift", "first", "2027-03-27 01:30", "2027-03-28 01:00"),
        ("skip", "first", "2027-03-27 01:30", "2027-03-29 00:30"),
        ("shift", "first", "2027-10-31 00:30", "2027-11-01 01:30"),
        ("shift", "both", "2027-10-31 00:30", "2027-10-31 01:30"),
    ],
)
async def test_the_claim_moves_the_series_by_the_reminders_policy(
    pool: Pool, gap: str, repeated: str, scheduled_for: str, expected_next: str
) -> None:
    due = utc(scheduled_for)
    reminder_id = await insert_reminder(
        pool,
        next_run_at=due,
        cron_expression="30 2 * * *",
        timezone="Europe/Berlin",
        dst_gap=gap,
        dst_repeated=repeated,
    )
    result = await claim_unconfirmed(pool, due)
    assert result.claimed == 1
    assert await pool.fetchval("SELECT next_run_at FROM reminders WHERE id = $1", reminder_id) == utc(
        expected_next
    )
