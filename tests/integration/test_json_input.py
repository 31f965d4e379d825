"""Hostile JSON against the real app (issue 17: defects 2, 7, 8, 9, 10 and the object payload).

Every JSON the API reads goes through core/jsontext.py: bodies on both create paths (the fast
route and FastAPI's), PATCH, snooze and ack bodies, the payload text and the ack details.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as redis

from api.app import create_app
from core.db import Pool
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.factories import ASSISTANT_ID

JSON = {"Content-Type": "application/json"}
# The FastAPI route: a create with an Idempotency-Key is declined by the fast path.
VIA_FASTAPI = {**JSON, "Idempotency-Key": "json-input"}
DUE_NOW = "UPDATE reminders SET next_run_at = now() - interval '1 second' WHERE id = $1"


@pytest.fixture
async def anonymous(settings: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API with no credential at all."""
    app = create_app(settings)
    app.state.pool = pool
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


def create_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 88,
        "assistant_id": str(ASSISTANT_ID),
        "type": "one_time",
        "trigger_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
        "payload": '{"text": "Dentist"}',
    }
    body.update(overrides)
    return body


def problems(response: httpx.Response) -> str:
    """Every error's location and message in a 4xx answer, as one text (valid JSON is required)."""
    detail = orjson.loads(response.content)["detail"]
    if isinstance(detail, str):
        return detail
    return " | ".join(".".join(map(str, e["loc"])) + ": " + e["msg"] for e in detail)


async def create(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/reminders/", json=create_body(**overrides))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# --- defect 2: deep nesting -------------------------------------------------------------------


@pytest.mark.parametrize("depth", [65, 950, 20_000])
@pytest.mark.parametrize("headers", [JSON, VIA_FASTAPI])
async def test_deep_body_without_a_credential_is_a_4xx_not_a_500(
    anonymous: httpx.AsyncClient, depth: int, headers: dict[str, str]
) -> None:
    for bomb in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = await anonymous.post("/reminders/", content=bomb, headers=headers)
        assert 400 <= response.status_code < 500, (depth, response.status_code, response.text[:200])
        orjson.loads(response.content)


@pytest.mark.parametrize("headers", [JSON, VIA_FASTAPI])
async def test_deep_body_with_a_key_is_a_422_naming_the_limit(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    deep = "[" * 800 + "]" * 800
    body = orjson.dumps(create_body()).replace(b'"user_id":88', b'"user_id":' + deep.encode())
    response = await api.post("/reminders/", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert "nested deeper than 64 levels" in problems(response)


async def test_deep_bodies_on_every_route_are_a_422(api: httpx.AsyncClient) -> None:
    rid = (await create(api))["id"]
    deep = "{" + '"k":{' * 300 + "}" * 300 + "}"
    for path, method in [
        (f"/reminders/{rid}", "PATCH"),
        (f"/reminders/{rid}/snooze", "POST"),
        (f"/reminders/{rid}/ack", "POST"),
    ]:
        response = await api.request(method, path, content=deep, headers=JSON)
        assert response.status_code == 422, (path, response.text)
        assert "nested deeper" in problems(response)


async def test_deep_payload_text_is_a_422_on_the_payload(api: httpx.AsyncClient) -> None:
    payload = '{"list": ' + "[" * 90 + "]" * 90 + "}"
    response = await api.post("/reminders/", json=create_body(payload=payload))
    assert response.status_code == 422
    assert "payload" in problems(response) and "nested deeper than 64" in problems(response)


# --- defect 10: duplicate keys ----------------------------------------------------------------


@pytest.mark.parametrize("headers", [JSON, VIA_FASTAPI])
async def test_duplicate_key_in_a_body_is_a_422_naming_it(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    text = orjson.dumps(create_body()).decode()
    body = text[:-1] + ',"misfire_grace_seconds":30,"misfire_grace_seconds":45}'
    response = await api.post("/reminders/", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert 'duplicate key "misfire_grace_seconds"' in problems(response)
    assert (await api.get("/reminders/user/88")).json()["total"] == 0


async def test_duplicate_key_in_the_payload_text_is_a_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/reminders/", json=create_body(payload='{"note": 1, "x": 0, "note": 2}'))
    assert response.status_code == 422
    assert "payload" in problems(response) and 'duplicate key "note"' in problems(response)


async def test_duplicate_key_in_a_patch_is_a_422(api: httpx.AsyncClient) -> None:
    rid = (await create(api))["id"]
    response = await api.patch(
        f"/reminders/{rid}", content='{"status":"paused","status":"active"}', headers=JSON
    )
    assert response.status_code == 422
    assert "duplicate key" in problems(response)


# --- defect 9 and the object payload: the payload comes back as sent --------------------------

EXACT = '{"big":98765432109876543210987654320001,"pi":3.14159265358979323846264338327950288,"e":-1.5E-300}'


async def test_payload_numbers_come_back_exactly_as_written(api: httpx.AsyncClient) -> None:
    reminder = await create(api, payload=EXACT.replace(",", ", "))
    assert reminder["payload"] == EXACT
    assert (await api.get(f"/reminders/{reminder['id']}")).json()["payload"] == EXACT


async def test_payload_may_be_an_object_and_keeps_its_numbers(api: httpx.AsyncClient) -> None:
    body = (
        orjson.dumps(create_body())
        .decode()
        .replace('"payload":"{\\"text\\": \\"Dentist\\"}"', '"payload":' + EXACT)
    )
    assert EXACT in body
    for headers in (JSON, VIA_FASTAPI):
        response = await api.post("/reminders/", content=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        assert response.json()["payload"] == EXACT


async def test_payload_object_in_a_patch_is_stored_as_its_text(api: httpx.AsyncClient) -> None:
    rid = (await create(api))["id"]
    response = await api.patch(
        f"/reminders/{rid}", content='{"payload": {"n": 12345678901234567890123}}', headers=JSON
    )
    assert response.status_code == 200, response.text
    assert response.json()["payload"] == '{"n":12345678901234567890123}'


async def test_the_event_carries_the_payload_as_sent(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    rid = (await create(api, payload=EXACT))["id"]
    await pool.execute(
        "UPDATE reminders SET next_run_at = now() - interval '1 second' WHERE id = $1", uuid.UUID(rid)
    )
    await Poller(settings, pool, redis_client).poll()
    (raw,) = await redis_client.lrange(EVENT_QUEUE, 0, -1)
    text = raw.decode() if isinstance(raw, bytes) else raw
    assert '"payload":' + EXACT + "," in text
    json.loads(text)  # still one valid JSON document


# --- defect 7: ack details the database cannot store ------------------------------------------


async def fired_event(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> tuple[str, str]:
    rid = (await create(api))["id"]
    await pool.execute(
        "UPDATE reminders SET next_run_at = now() - interval '1 second' WHERE id = $1", uuid.UUID(rid)
    )
    await Poller(settings, pool, redis_client).poll()
    (raw,) = await redis_client.lrange(EVENT_QUEUE, 0, -1)
    return rid, str(orjson.loads(raw)["event_id"])


@pytest.mark.parametrize(
    ("details", "problem"),
    [
        ('{"count": 18446744073709551621}', "64 bits"),
        ('{"count": -9223372036854775809}', "64 bits"),
        ('{"ratio": 1e999}', "finite"),
        ('{"note": "a\\u0000b"}', "NUL"),
        ('{"note": ["\\udbff"]}', "surrogate"),
        ('{"n\\udc01": 1}', "surrogate"),
        ('{"dup": 1, "dup": 1}', "duplicate key"),
        ('{"deep": ' + "[" * 70 + "]" * 70 + "}", "nested deeper"),
    ],
)
async def test_ack_details_the_database_cannot_store_are_a_422(
    settings: Settings,
    pool: Pool,
    redis_client: redis.Redis,
    api: httpx.AsyncClient,
    details: str,
    problem: str,
) -> None:
    rid, event_id = await fired_event(settings, pool, redis_client, api)
    body = '{"event_id": "' + event_id + '", "details": ' + details + "}"
    response = await api.post(f"/reminders/{rid}/ack", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert problem in problems(response)
    good = await api.post(
        f"/reminders/{rid}/ack", json={"event_id": event_id, "details": {"deep": [[[[1]]]], "big": 2**62}}
    )
    assert good.status_code == 200, good.text
    history = (await api.get(f"/reminders/{rid}/history")).json()
    (ack,) = [entry for entry in history["audit"]["items"] if entry["action"] == "ack"]
    assert ack["details"]["details"] == {"deep": [[[[1]]]], "big": 2**62}


# --- defect 8: lone surrogates anywhere -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "escape"),
    [
        ("timezone", "\\udfff"),
        ("cron_expression", "\\ud800"),
        ("assistant_id", "\\udabc"),
        ("payload", "\\ud812"),
    ],
)
@pytest.mark.parametrize("headers", [JSON, VIA_FASTAPI])
async def test_lone_surrogate_in_a_string_field_is_a_422_naming_it(
    api: httpx.AsyncClient, field: str, escape: str, headers: dict[str, str]
) -> None:
    body = orjson.dumps(create_body(**{field: "SURROGATE"})).replace(b"SURROGATE", escape.encode())
    response = await api.post("/reminders/", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert field in problems(response) and "surrogate" in problems(response)


async def test_lone_surrogate_inside_the_payload_text_is_a_422(api: httpx.AsyncClient) -> None:
    body = orjson.dumps(create_body(payload='{"t": "SURROGATE"}')).replace(b"SURROGATE", b"\\\\udc99")
    response = await api.post("/reminders/", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert "payload" in problems(response) and "surrogate" in problems(response)
