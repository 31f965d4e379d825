"""The HTTP edge through the real app: response headers, Allow, HEAD, authentication before any
body work, and the documentation pages served from the vendored assets."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.docs_pages import STATIC
from api.schemas import ReminderCreate
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID

pytestmark = pytest.mark.integration

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@pytest.fixture
def app(settings: Settings, pool: Pool) -> FastAPI:
    app = create_app(settings)
    app.state.pool = pool
    return app


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:
        yield client


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


def one_time(**overrides: Any) -> dict[str, Any]:
    return {
        "user_id": 321,
        "assistant_id": str(ASSISTANT_ID),
        "type": "one_time",
        "trigger_at": (datetime.now(UTC) + timedelta(hours=3)).isoformat(),
        "payload": '{"text": "headers"}',
        **overrides,
    }


async def _created(api: httpx.AsyncClient) -> str:
    response = await api.post("/reminders/", json=one_time())
    assert response.status_code == 201, response.text
    reminder_id: str = response.json()["id"]
    return reminder_id


@pytest.mark.parametrize("kind", ["created", "read", "not_found", "unauthorized", "invalid", "health", "413"])
async def test_every_answer_carries_the_security_headers(api: httpx.AsyncClient, kind: str) -> None:
    if kind == "created":
        response = await api.post("/reminders/", json=one_time())
    elif kind == "read":
        response = await api.get(f"/reminders/{await _created(api)}")
    elif kind == "not_found":
        response = await api.get(f"/reminders/{uuid.uuid4()}")
    elif kind == "unauthorized":
        response = await api.get("/reminders/scheduled", headers={"X-API-Key": "wrong"})
    elif kind == "invalid":
        response = await api.post("/reminders/", json=one_time(user_id="many"))
    elif kind == "health":
        response = await api.get("/healthz")
    else:
        response = await api.post("/reminders/", content=b"x" * (200 * 1024))
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (kind, name, response.status_code)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/reminders/{id}", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("POST", "/reminders/{id}", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("DELETE", "/reminders/", {"POST"}),
        # Not a reminder id (api/routes/ids.py): only the GET of the list itself.
        ("PUT", "/reminders/scheduled", {"GET", "HEAD"}),
        ("PATCH", "/reminders/preview", {"GET", "HEAD"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
    ],
)
async def test_a_405_names_every_method_of_the_path(
    api: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await api.request(method, path.replace("{id}", str(uuid.uuid4())))
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


@pytest.mark.parametrize(
    "path", ["/healthz", "/reminders/{id}", "/reminders/scheduled", "/docs", "/openapi.json"]
)
async def test_head_answers_wherever_get_does(api: httpx.AsyncClient, path: str) -> None:
    if "{id}" in path:
        path = path.replace("{id}", await _created(api))
    got = await api.get(path)
    head = await api.head(path)
    assert got.status_code == 200
    assert head.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


async def test_the_create_fast_path_authenticates_before_validating(
    anonymous: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated: list[object] = []
    real = ReminderCreate.model_validate

    def spy(value: object, **kwargs: Any) -> Any:
        validated.append(value)
        return real(value, **kwargs)

    monkeypatch.setattr(ReminderCreate, "model_validate", spy)
    # A never-firing cron expression is the costly kind of body to validate.
    body = orjson.dumps(one_time(type="recurring", trigger_at=None, cron_expression="0 0 31 4 *"))
    for headers in ({}, {"X-API-Key": "not-a-key"}, {"Authorization": "Bearer not.a.token"}):
        response = await anonymous.post(
            "/reminders/", content=body, headers={"Content-Type": "application/json", **headers}
        )
        assert response.status_code == 401, response.text
    assert validated == []


async def test_docs_pages_reference_only_local_assets(api: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = await api.get(page)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
        assert all(not re.match(r"(?i)(https?:)?//", url) for url in urls), urls
        assert "cdn" not in response.text.lower()
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    docs = (await api.get("/docs")).text
    assert "/static/swagger-ui/swagger-ui-bundle.js" in docs
    assert "/static/swagger-ui/swagger-ui.css" in docs
    assert "/static/redoc/redoc.standalone.js" in (await api.get("/redoc")).text


@pytest.mark.parametrize(
    ("url", "file", "media"),
    [
        ("/static/swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js", "javascript"),
        ("/static/swagger-ui/swagger-ui.css", "swagger-ui/swagger-ui.css", "text/css"),
        ("/static/redoc/redoc.standalone.js", "redoc/redoc.standalone.js", "javascript"),
    ],
)
async def test_the_vendored_assets_are_served(
    api: httpx.AsyncClient, url: str, file: str, media: str
) -> None:
    response = await api.get(url)
    assert response.status_code == 200
    assert media in response.headers["content-type"]
    assert response.content == (STATIC / file).read_bytes()


def test_the_vendored_assets_come_with_their_licenses() -> None:
    for name in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE", "README.md"):
        assert (STATIC / name).stat().st_size > 0
    readme = (STATIC / "README.md").read_text()
    assert "swagger-ui-dist@5.35.0" in readme and "redoc@2.5.4" in readme
