"""Request limits through the real app (OWASP API4): the body cap (413) and the rate limit (429)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from api.app import create_app
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID

KIB = 1024
SCHEDULED = "/reminders/scheduled"
OTHER_KEY = "a-second-settings-key"
TOO_LARGE = {"detail": "request body larger than 131072 bytes"}


def _app(settings: Settings, pool: Pool, **overrides: Any) -> FastAPI:
    overrides.setdefault("api_keys", f"{settings.api_keys},{OTHER_KEY}")
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
            assert (await c.get(SCHEDULED, headers={"X-API-Key": TEST_API_KEY})).status_code == 200
        limited = await c.get(SCHEDULED, headers={"X-API-Key": TEST_API_KEY})
        assert limited.status_code == 429
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 2
        assert limited.json() == {"detail": f"rate limit exceeded; retry after {retry_after} s"}

        # Another credential has a bucket of its own; a route that takes no credential is not limited.
        assert (await c.get(SCHEDULED, headers={"X-API-Key": OTHER_KEY})).status_code == 200
        for _ in range(5):
            assert (await c.get("/healthz", headers={"X-API-Key": TEST_API_KEY})).status_code == 200


@pytest.mark.parametrize(
    "junk",
    [
        lambda n: {"X-API-Key": [TEST_API_KEY, f"junk-{n}"]},
        lambda n: {"X-API-Key": [f"junk-{n}", TEST_API_KEY]},
        lambda n: {"X-API-Key": [TEST_API_KEY], "Authorization": [f"Bearer junk.{n}"]},
    ],
)
async def test_junk_extra_credential_headers_cannot_escape_the_limit(
    settings: Settings, pool: Pool, junk: Callable[[int], dict[str, list[str]]]
) -> None:
    app = _app(settings, pool, rate_limit_burst=4, rate_limit_per_second=0.2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        for n in range(12):
            headers = [(name, value) for name, values in junk(n).items() for value in values]
            response = await c.get(SCHEDULED, headers=headers)
            assert response.status_code == 400, response.text
            assert "send one credential header" in response.json()["detail"]
        # The key alone still has its whole burst (nothing above spent it), then 429.
        codes = [(await c.get(SCHEDULED, headers={"X-API-Key": TEST_API_KEY})).status_code for _ in range(6)]
        assert codes == [200] * 4 + [429] * 2


@pytest.mark.parametrize("schemes", [["Bearer", "bearer", "BEARER", "BeArEr"]])
async def test_the_spelling_of_bearer_shares_one_bucket(
    settings: Settings, pool: Pool, schemes: list[str]
) -> None:
    secret = "a-rate-limit-test-secret-long-enough-for-hs256"
    app = _app(settings, pool, rate_limit_burst=3, rate_limit_per_second=0.2, jwt_secret=SecretStr(secret))
    token = jwt.encode(
        {"sub": "bot-9", "aud": "reminder-service", "exp": int(time.time()) + 600, "scope": "reminders:read"},
        secret,
        algorithm="HS256",
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        codes = [
            (await c.get(SCHEDULED, headers={"Authorization": f"{scheme} {token}"})).status_code
            for scheme in schemes * 2
        ]
    assert codes == [200] * 3 + [429] * 5


async def test_requests_without_a_valid_credential_are_limited_per_address(
    settings: Settings, pool: Pool
) -> None:
    app = _app(settings, pool, unauthenticated_rate_limit_burst=5, unauthenticated_rate_limit_per_second=0.1)
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        # Missing, unknown (a fresh one each time) and malformed credentials share the address's bucket.
        attempts = [{}, {"X-API-Key": "rmd_guess-1"}, {"X-API-Key": "nope"}, {"Authorization": "Basic eDp5"}]
        codes = [(await c.get(SCHEDULED, headers=attempts[n % 4])).status_code for n in range(5)]
        assert codes == [401] * 5
        limited = await c.get(SCHEDULED, headers={"X-API-Key": "rmd_guess-2"})
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        # A valid key from the same address is not held back by the guesses.
        assert (await c.get(SCHEDULED, headers={"X-API-Key": TEST_API_KEY})).status_code == 200
    other = httpx.ASGITransport(app=app, client=("203.0.113.9", 4711))
    async with httpx.AsyncClient(transport=other, base_url="http://api") as c:
        assert (await c.get(SCHEDULED)).status_code == 401
