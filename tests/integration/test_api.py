"""The REST API against a real database: every endpoint, its codes, and its validation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from api import operations
from api.app import create_app
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID

OTHER_ASSISTANT = uuid.UUID("9a9a9a9a-0000-4000-8000-000000000001")
BOUND_KEY = "bound-key"


@pytest.fixture
async def client(settings: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"api_keys": f"{BOUND_KEY}@{OTHER_ASSISTANT}"}))
    app.state.pool = pool  # the lifespan is not run by the ASGI transport; share the test pool
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as c:
        yield c


def one_time(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 123,
        "assistant_id": str(ASSISTANT_ID),
        "type": "one_time",
        "trigger_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "payload": '{"text": "Meeting", "priority": "normal"}',
    }
    body.update(overrides)
    return body


def recurring(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 123,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": "0 10 * * *",
        "timezone": "Europe/Berlin",
        "payload": '{"check_type": "daily_report"}',
    }
    body.update(overrides)
    return body


def error_fields(response: httpx.Response) -> set[str]:
    return {str(err["loc"][-1]) for err in response.json()["detail"]}


async def test_create_one_time_returns_every_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/reminders/", json=one_time())
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "id", "user_id", "assistant_id", "created_by_assistant_id", "type", "trigger_at",
        "cron_expression", "timezone", "payload", "status", "next_run_at", "last_triggered_at",
        "misfire_policy", "misfire_grace_seconds", "ack_required", "start_at", "until", "max_runs",
        "runs_count", "dst_policy", "created_at", "updated_at",
    }  # fmt: skip
    assert (body["misfire_policy"], body["misfire_grace_seconds"], body["ack_required"]) == (
        "fire_once",
        60,
        True,
    )
    assert body["status"] == "pending"
    assert body["next_run_at"] == body["trigger_at"]
    assert body["created_by_assistant_id"] == str(ASSISTANT_ID)
    assert body["payload"] == '{"text":"Meeting","priority":"normal"}'


async def test_create_recurring_computes_next_fire_in_its_time_zone(client: httpx.AsyncClient) -> None:
    response = await client.post("/reminders/", json=recurring())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "active"
    next_run = datetime.fromisoformat(body["next_run_at"])
    local = next_run.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute, local.second) == (10, 0, 0)
    assert next_run > datetime.now(UTC)


@pytest.mark.parametrize(
    "margin",
    [
        pytest.param(operations.CLOCK_GUESS_MARGIN, id="guess-right"),
        # A guess an hour back: "* * * * *" fires between it and now, so the insert refuses it.
        pytest.param(timedelta(hours=1), id="fire-between-guess-and-now"),
        # A guess ahead of the database's clock (the API host's clock runs fast).
        pytest.param(timedelta(minutes=-5), id="guess-ahead-of-the-database"),
    ],
)
async def test_recurring_first_fire_is_the_next_after_the_database_clock(
    client: httpx.AsyncClient, pool: Pool, monkeypatch: pytest.MonkeyPatch, margin: timedelta
) -> None:
    monkeypatch.setattr(operations, "CLOCK_GUESS_MARGIN", margin)
    before = await pool.fetchval("SELECT now()")
    response = await client.post("/reminders/", json=recurring(cron_expression="* * * * *", timezone="UTC"))
    after = await pool.fetchval("SELECT now()")
    assert response.status_code == 201, response.text
    next_run = datetime.fromisoformat(response.json()["next_run_at"])
    # The first whole minute after the database's now at the insert.
    assert (
        before.replace(second=0, microsecond=0)
        < next_run
        <= after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    )
    assert next_run.second == 0 and next_run.microsecond == 0
    rows = await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'create'")
    assert rows == 1, "a refused guess must write no row and no audit"


async def test_six_field_cron_has_seconds_first(client: httpx.AsyncClient) -> None:
    response = await client.post("/reminders/", json=recurring(cron_expression="*/2 * * * * *"))
    assert response.status_code == 201, response.text
    next_run = datetime.fromisoformat(response.json()["next_run_at"])
    assert next_run.second % 2 == 0
    assert next_run - datetime.now(UTC) <= timedelta(seconds=3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (one_time(type="weekly"), "type"),
        (one_time(trigger_at=None), "trigger_at"),
        (one_time(trigger_at="2030-01-01T10:00:00"), "trigger_at"),
        (one_time(cron_expression="0 10 * * *"), "cron_expression"),
        (recurring(cron_expression=None), "cron_expression"),
        (recurring(cron_expression="0 10 * *"), "cron_expression"),
        (recurring(cron_expression="61 * * * *"), "cron_expression"),
        (recurring(trigger_at="2030-01-01T10:00:00Z"), "trigger_at"),
        (recurring(timezone="Mars/Olympus"), "timezone"),
        (one_time(payload="not json"), "payload"),
        (one_time(payload="[1, 2]"), "payload"),
        (one_time(payload='{"x": "' + "a" * 65536 + '"}'), "payload"),
        (one_time(user_id=-1), "user_id"),
        (one_time(user_id=2**63), "user_id"),
        (one_time(assistant_id="nope"), "assistant_id"),
        (one_time(created_by_assistant_id=str(uuid.uuid4())), "created_by_assistant_id"),
        (one_time(status="active"), "status"),
    ],
)
async def test_create_rejects_bad_input_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/reminders/", json=body)
    assert response.status_code == 422, response.text
    assert field in error_fields(response)


async def test_malformed_json_body_is_a_4xx(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/reminders/", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
async def test_non_finite_numbers_are_a_422_naming_the_field_not_a_500(
    client: httpx.AsyncClient, literal: bytes
) -> None:
    # Python's JSON parser accepts these literals; the error answer must still be valid JSON.
    body = orjson.dumps(one_time(user_id=0)).replace(b'"user_id":0', b'"user_id":' + literal)
    response = await client.post("/reminders/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert "user_id" in error_fields(response)


async def test_past_trigger_at_is_accepted(client: httpx.AsyncClient) -> None:
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    response = await client.post("/reminders/", json=one_time(trigger_at=past))
    assert response.status_code == 201
    assert response.json()["status"] == "pending"


async def test_every_endpoint_needs_an_api_key(client: httpx.AsyncClient) -> None:
    rid = uuid.uuid4()
    calls = [
        ("POST", "/reminders/", one_time()),
        ("GET", f"/reminders/{rid}", None),
        ("GET", "/reminders/user/123", None),
        ("DELETE", f"/reminders/{rid}", None),
        ("PATCH", f"/reminders/{rid}", {"status": "paused"}),
        ("GET", "/reminders/scheduled", None),
        ("POST", f"/reminders/{rid}/ack", {"event_id": str(uuid.uuid4())}),
    ]
    for method, path, body in calls:
        for headers in ({"X-API-Key": ""}, {"X-API-Key": "wrong"}):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["WWW-Authenticate"].startswith("ApiKey")


async def test_bound_key_cannot_create_for_or_see_another_assistant(client: httpx.AsyncClient) -> None:
    created = (await client.post("/reminders/", json=one_time())).json()
    bound = {"X-API-Key": BOUND_KEY}
    response = await client.post("/reminders/", json=one_time(), headers=bound)
    assert response.status_code == 403
    assert (await client.get(f"/reminders/{created['id']}", headers=bound)).status_code == 404
    listing = (await client.get("/reminders/user/123", headers=bound)).json()
    assert listing["total"] == 0
    own = await client.post("/reminders/", json=one_time(assistant_id=str(OTHER_ASSISTANT)), headers=bound)
    assert own.status_code == 201
    assert own.json()["created_by_assistant_id"] == str(OTHER_ASSISTANT)


async def test_get_unknown_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/reminders/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json() == {"detail": "reminder not found"}
    assert (await client.get("/reminders/not-a-uuid")).status_code == 422


async def test_list_user_filters_and_paginates_in_stable_order(client: httpx.AsyncClient) -> None:
    ids = [(await client.post("/reminders/", json=one_time())).json()["id"] for _ in range(5)]
    rec = (await client.post("/reminders/", json=recurring())).json()["id"]
    await client.post("/reminders/", json=one_time(user_id=999))

    everything = (await client.get("/reminders/user/123", params={"limit": 100})).json()
    assert [r["id"] for r in everything["items"]] == [*ids, rec]
    assert everything["total"] == 6

    page2 = (await client.get("/reminders/user/123", params={"page": 2, "limit": 2})).json()
    assert [r["id"] for r in page2["items"]] == ids[2:4]
    assert (page2["total"], page2["page"], page2["limit"]) == (6, 2, 2)

    only_recurring = (await client.get("/reminders/user/123", params={"type": "recurring"})).json()
    assert [r["id"] for r in only_recurring["items"]] == [rec]
    only_active = (await client.get("/reminders/user/123", params={"status": "active"})).json()
    assert [r["id"] for r in only_active["items"]] == [rec]

    for params in ({"limit": 0}, {"limit": 101}, {"page": 0}, {"status": "bogus"}, {"type": "x"}):
        response = await client.get("/reminders/user/123", params=params)
        assert response.status_code == 422, params


async def test_pause_resume_and_impossible_transitions(client: httpx.AsyncClient) -> None:
    rid = (await client.post("/reminders/", json=recurring())).json()["id"]
    paused = await client.patch(f"/reminders/{rid}", json={"status": "paused"})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    again = await client.patch(f"/reminders/{rid}", json={"status": "paused"})
    assert again.status_code == 200
    resumed = await client.patch(f"/reminders/{rid}", json={"status": "active"})
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert datetime.fromisoformat(resumed.json()["next_run_at"]) > datetime.now(UTC)

    assert (await client.delete(f"/reminders/{rid}")).status_code == 204
    conflict = await client.patch(f"/reminders/{rid}", json={"status": "active"})
    assert conflict.status_code == 409
    assert "cancelled" in conflict.json()["detail"]
    bad = await client.patch(f"/reminders/{rid}", json={"status": "completed"})
    assert bad.status_code == 422
    missing = await client.patch(f"/reminders/{uuid.uuid4()}", json={"status": "paused"})
    assert missing.status_code == 404


async def test_one_time_pause_and_resume(client: httpx.AsyncClient) -> None:
    created = (await client.post("/reminders/", json=one_time())).json()
    paused = (await client.patch(f"/reminders/{created['id']}", json={"status": "paused"})).json()
    assert paused["status"] == "paused"
    resumed = (await client.patch(f"/reminders/{created['id']}", json={"status": "active"})).json()
    assert resumed["status"] == "pending"
    assert resumed["next_run_at"] == created["trigger_at"]


async def test_delete_cancels_and_keeps_the_row(client: httpx.AsyncClient, pool: Pool) -> None:
    rid = (await client.post("/reminders/", json=one_time())).json()["id"]
    assert (await client.delete(f"/reminders/{rid}")).status_code == 204
    assert (await client.delete(f"/reminders/{rid}")).status_code == 204
    row = (await client.get(f"/reminders/{rid}")).json()
    assert row["status"] == "cancelled" and row["next_run_at"] is None
    assert (await client.delete(f"/reminders/{uuid.uuid4()}")).status_code == 404
    actions = await pool.fetch(
        "SELECT action FROM audit_log WHERE reminder_id = $1 ORDER BY id", uuid.UUID(rid)
    )
    assert [a["action"] for a in actions] == ["create", "cancel"]


async def test_scheduled_lists_soonest_first(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC)
    later = (
        await client.post("/reminders/", json=one_time(trigger_at=(now + timedelta(hours=5)).isoformat()))
    ).json()
    sooner = (
        await client.post("/reminders/", json=one_time(trigger_at=(now + timedelta(hours=1)).isoformat()))
    ).json()
    paused = (await client.post("/reminders/", json=one_time())).json()
    await client.patch(f"/reminders/{paused['id']}", json={"status": "paused"})
    response = await client.get("/reminders/scheduled")
    assert response.status_code == 200
    body = response.json()
    assert [r["id"] for r in body["items"]] == [sooner["id"], later["id"]]
    assert body["total"] == 2


async def test_ack_unknown_event_is_404(client: httpx.AsyncClient) -> None:
    rid = (await client.post("/reminders/", json=one_time())).json()["id"]
    response = await client.post(f"/reminders/{rid}/ack", json={"event_id": str(uuid.uuid4())})
    assert response.status_code == 404


async def test_openapi_has_the_three_use_case_examples(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    examples = schema["paths"]["/reminders/"]["post"]["requestBody"]["content"]["application/json"][
        "examples"
    ]
    assert set(examples) == {"remind_in_2_hours", "currency_monitor", "daily_check_in"}


async def test_database_down_is_503_with_retry_after(settings: Settings) -> None:
    # A pool whose server is gone (nothing listens on port 1): every acquire fails to connect.
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0, timeout=2)
    app = create_app(settings)
    app.state.pool = dead
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"X-API-Key": TEST_API_KEY},
        ) as client:
            for response in (
                await client.get(f"/reminders/{uuid.uuid4()}"),
                await client.post("/reminders/", json=one_time()),
                await client.get("/readyz"),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "5"
                assert "unavailable" in response.json()["detail"]
    finally:
        await dead.close()


@pytest.mark.parametrize("zone_name", ["\x00", "../../etc/passwd", "", "UTC\n"])
async def test_odd_time_zones_are_422(client: httpx.AsyncClient, zone_name: str) -> None:
    response = await client.post("/reminders/", json=recurring(timezone=zone_name))
    assert response.status_code == 422
    assert "timezone" in error_fields(response)
