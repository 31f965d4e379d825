"""Authentication comes before the body is read or parsed, on every route that takes one.

FastAPI reads and parses a route's JSON body before it solves the route's dependencies (the
credential check among them): a wrong key with a broken body got a 422 that revealed the body's
problems to whoever sent it, and cost the parse, instead of a 401.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from api.app import create_app
from core.db import Pool
from core.settings import Settings

JSON = {"Content-Type": "application/json"}
RID = uuid.uuid4()
# POST /reminders/ with an Idempotency-Key, or under a root path, is the FastAPI route itself.
BODY_ROUTES = [
    ("POST", "/reminders/", {"Idempotency-Key": "auth-first"}),
    ("PATCH", f"/reminders/{RID}", {}),
    ("POST", f"/reminders/{RID}/snooze", {}),
    ("POST", f"/reminders/{RID}/ack", {}),
]
BROKEN = [b'{"user_id": ', b'{"a": 1, "a": 2}', b"[" * 100 + b"]" * 100, b"\xff\xfe"]


@pytest.fixture(params=["", "/behind-a-proxy"], ids=["plain", "root_path"])
async def stranger(
    request: pytest.FixtureRequest, settings: Settings, pool: Pool
) -> AsyncIterator[httpx.AsyncClient]:
    """The API called with a key it does not know, at its root or under a proxy's path prefix."""
    app = create_app(settings)
    app.state.pool = pool
    transport = httpx.ASGITransport(app=app, root_path=request.param)
    base = "http://api" + request.param
    async with httpx.AsyncClient(
        transport=transport, base_url=base, headers={"X-API-Key": "rk_nope"}
    ) as client:
        yield client


@pytest.mark.parametrize(("method", "path", "headers"), BODY_ROUTES)
@pytest.mark.parametrize("body", BROKEN)
async def test_a_wrong_key_with_a_broken_body_is_401(
    stranger: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    response = await stranger.request(method, path, content=body, headers={**JSON, **headers})
    assert response.status_code == 401, (method, path, response.status_code, response.text)


@pytest.mark.parametrize(("method", "path", "headers"), BODY_ROUTES)
async def test_no_credential_with_a_broken_body_is_401(
    stranger: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> None:
    del stranger.headers["X-API-Key"]
    response = await stranger.request(method, path, content=b"{", headers={**JSON, **headers})
    assert response.status_code == 401, (method, path, response.status_code, response.text)
