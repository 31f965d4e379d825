"""Request limits through the real app (OWASP API4): the body cap (413) and the rate limit (429)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from api.app import create_app
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID

KIB = 1024
TOO_LARGE = {"detail": "request body larger than 131072 bytes"}


def _app(settings: Settings, pool: Pool, **overrides: Any) -> FastAPI:
    app = create_app(settings.model_copy(update=overrides))
    app.state.pool = pool  # the lifespan is not run by the ASGI transport; share the test pool
    return app


@pytest.fixture
async def client(settings: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(settings, pool))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as c:
        yield c


def reminder(payload: str) -> dict[str, Any]:
    return {
        "user_id": 123,
        "assistant_id": str(ASSISTANT_ID),
        "type": "one_time",
        "trigger_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "payload": payload,
    }


def payload_of(size: int) -> str:
    """A JSON object of exactly ``size`` characters."""
    return '{"x": "' + "a" * (size - 9) + '"}'


async def test_a_64_kib_payload_in_a_body_under_128_kib_is_accepted(client: httpx.AsyncClient) -> None:
    body = orjson.dumps(reminder(payload_of(64 * KIB)))
    assert 64 * KIB < len(body) < 128 * KIB
    response = await client.post("/reminders/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text[:200]


async def test_a_129_kib_body_is_413(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({**reminder("{}"), "padding": "a" * (129 * KIB)})
    response = await client.post("/reminders/", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


async def test_a_chunked_body_without_content_length_is_counted(client: httpx.AsyncClient) -> None:
    body = orjson.dumps({**reminder("{}"), "padding": "a" * (129 * KIB)})

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16 * KIB):
            yield body[start : start + 16 * KIB]

    request = client.build_request(
        "POST", "/reminders/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in request.headers
    response = await client.send(request)
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


async def test_a_small_chunked_body_still_goes_through(client: httpx.AsyncClient) -> None:
    body = orjson.dumps(reminder('{"text": "Meeting"}'))

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    response = await client.post(
        "/reminders/", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


async def test_the_fourth_request_over_a_burst_of_3_is_429(settings: Settings, pool: Pool) -> None:
    app = _app(settings, pool, rate_limit_burst=3, rate_limit_per_second=0.5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        for _ in range(3):
            assert (await c.get("/healthz", headers={"X-API-Key": TEST_API_KEY})).status_code == 200
        limited = await c.get("/healthz", headers={"X-API-Key": TEST_API_KEY})
        assert limited.status_code == 429
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 2
        assert limited.json() == {"detail": f"rate limit exceeded; retry after {retry_after} s"}

        # Another credential has a bucket of its own; no credential is not this limiter's business.
        assert (await c.get("/healthz", headers={"X-API-Key": "someone-else"})).status_code == 200
        for _ in range(5):
            assert (await c.get("/reminders/scheduled")).status_code == 401
