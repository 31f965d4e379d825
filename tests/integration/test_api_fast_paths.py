"""api/fast_paths.py answers exactly as the FastAPI routes it stands in for, errors included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.fast_paths import DECLINED, CreateRoute, GetRoute, _FastRoute
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID

pytestmark = pytest.mark.integration

OTHER_ASSISTANT = uuid.UUID("9a9a9a9a-0000-4000-8000-000000000002")
BOUND_KEY = "bound-key-fast"
# Values that differ between two otherwise identical creates.
VOLATILE = {"id", "created_at", "updated_at", "next_run_at"}


def _app(settings: Settings, pool: Pool, *, fast: bool) -> FastAPI:
    app = create_app(settings.model_copy(update={"api_keys": f"{BOUND_KEY}@{OTHER_ASSISTANT}"}))
    app.state.pool = pool  # the lifespan is not run by the ASGI transport; share the test pool
    if not fast:
        app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, _FastRoute)]
    return app


@pytest.fixture
async def clients(
    settings: Settings, pool: Pool
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(fast paths on, FastAPI only), both as the admin test key."""
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_app(settings, pool, fast=True)),
            base_url="http://api",
            headers={"X-API-Key": TEST_API_KEY},
        ) as fast,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=_app(settings, pool, fast=False)),
            base_url="http://api",
            headers={"X-API-Key": TEST_API_KEY},
        ) as slow,
    ):
        yield fast, slow


def one_time(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 123,
        "assistant_id": str(ASSISTANT_ID),
        "type": "one_time",
        "trigger_at": (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat(),
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


def _same(fast: httpx.Response, slow: httpx.Response) -> None:
    """Same status, headers (but the request id) and body (but what differs between two creates)."""
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    headers = [(k, v) for k, v in fast.headers.items() if k != "x-request-id"]
    others = [(k, v) for k, v in slow.headers.items() if k != "x-request-id"]
    if fast.status_code in (200, 201) and "id" in fast.json():
        # Volatile values differ in length (microseconds), and so may content-length.
        headers = [(k, v) for k, v in headers if k != "content-length"]
        others = [(k, v) for k, v in others if k != "content-length"]
        a, b = fast.json(), slow.json()
        assert list(a) == list(b)
        assert {k: v for k, v in a.items() if k not in VOLATILE} == {
            k: v for k, v in b.items() if k not in VOLATILE
        }
    else:
        assert fast.content == slow.content
    assert headers == others


CREATES: list[tuple[str, bytes, dict[str, str]]] = [
    ("one-time", orjson.dumps(one_time()), {}),
    ("recurring", orjson.dumps(recurring()), {}),
    ("recurring with options", orjson.dumps(recurring(max_runs=3, dst_policy={"gap": "skip"})), {}),
    ("charset", orjson.dumps(one_time()), {"Content-Type": "application/json; charset=utf-8"}),
    ("text/plain", orjson.dumps(one_time()), {"Content-Type": "text/plain"}),
    ("no content type", orjson.dumps(one_time()), {"Content-Type": ""}),
    ("invalid JSON", b'{"user_id": 1,', {}),
    ("not UTF-8", b'{"payload": "\xff"}', {}),
    ("empty body", b"", {}),
    ("a list", b"[]", {}),
    ("missing field", orjson.dumps({k: v for k, v in one_time().items() if k != "payload"}), {}),
    ("unknown field", orjson.dumps(one_time(colour="red")), {}),
    ("bad cron", orjson.dumps(recurring(cron_expression="61 * * * *")), {}),
    ("bad zone", orjson.dumps(recurring(timezone="Mars/Olympus")), {}),
    ("payload not an object", orjson.dumps(one_time(payload="[1]")), {}),
    ("no key", orjson.dumps(one_time()), {"X-API-Key": ""}),
    ("wrong key", orjson.dumps(one_time()), {"X-API-Key": "nope"}),
    ("wrong key, invalid body", b"{", {"X-API-Key": "nope"}),
    ("bearer without JWT settings", orjson.dumps(one_time()), {"X-API-Key": "", "Authorization": "Bearer x"}),
    ("other assistant's key", orjson.dumps(one_time()), {"X-API-Key": BOUND_KEY}),
    ("idempotency key too long", orjson.dumps(one_time()), {"Idempotency-Key": "k" * 256}),
]


# Valid JSON bodies, plain Content-Type, no Idempotency-Key: the fast path answers (errors included).
TAKEN = {
    "one-time",
    "recurring",
    "recurring with options",
    "no key",
    "wrong key",
    # Authentication comes before the body is even read (issue 17, defect 4): a 401, not declined.
    "wrong key, invalid body",
    "bearer without JWT settings",
    "other assistant's key",
}


@pytest.mark.parametrize(("case", "body", "headers"), CREATES, ids=[c[0] for c in CREATES])
async def test_creates_answer_as_fastapi_does(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    body: bytes,
    headers: dict[str, str],
) -> None:
    fast, slow = clients
    declined: list[bool] = []
    decline = _FastRoute.decline

    async def counted(self: _FastRoute, *args: Any) -> None:
        declined.append(True)
        await decline(self, *args)

    monkeypatch.setattr(_FastRoute, "decline", counted)
    sent = {"Content-Type": "application/json", **headers}
    sent = {k: v for k, v in sent.items() if v}

    def request(client: httpx.AsyncClient) -> httpx.Request:
        built = client.build_request("POST", "/reminders/", content=body, headers=sent)
        for name, value in headers.items():
            if not value:  # an empty override: no such header at all
                built.headers.pop(name, None)
        return built

    answer = await fast.send(request(fast))
    assert declined == ([] if case in TAKEN else [True])
    if case == "wrong key, invalid body":
        # FastAPI's own route decodes the body before its dependencies run (a 422); the fast path
        # authenticates first, as the issue asks of every path.
        assert answer.status_code == 401, answer.text
        return
    _same(answer, await slow.send(request(slow)))


async def test_an_idempotent_retry_answers_as_fastapi_does(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    fast, slow = clients
    body = one_time()
    first = await fast.post("/reminders/", json=body, headers={"Idempotency-Key": "fast-1"})
    assert first.status_code == 201
    # The same key and body again, through each app: the first reminder, 200 and marked replayed.
    again_fast = await fast.post("/reminders/", json=body, headers={"Idempotency-Key": "fast-1"})
    again_slow = await slow.post("/reminders/", json=body, headers={"Idempotency-Key": "fast-1"})
    assert again_fast.status_code == 200 and again_fast.headers["idempotent-replayed"] == "true"
    assert again_fast.content == again_slow.content == first.content
    _same(again_fast, again_slow)


async def test_reads_answer_as_fastapi_does(clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    fast, slow = clients
    created = await slow.post("/reminders/", json=recurring())
    reminder_id = created.json()["id"]
    paths = [
        f"/reminders/{reminder_id}",
        f"/reminders/{reminder_id.upper()}",
        f"/reminders/{reminder_id.replace('-', '')}",  # not canonical: declined, FastAPI parses it
        f"/reminders/{reminder_id}?unknown=1",
        f"/reminders/{uuid.uuid4()}",  # 404
        "/reminders/not-a-uuid",  # 422
        f"/reminders/{reminder_id}/",
    ]
    for path in paths:
        for headers in ({}, {"X-API-Key": ""}, {"X-API-Key": "nope"}, {"X-API-Key": BOUND_KEY}):
            a = await fast.get(path, headers={k: v for k, v in headers.items() if v})
            b = await slow.get(path, headers={k: v for k, v in headers.items() if v})
            assert a.status_code == b.status_code, (path, headers, a.text, b.text)
            assert a.content == b.content, (path, headers)
            assert [(k, v) for k, v in a.headers.items() if k != "x-request-id"] == [
                (k, v) for k, v in b.headers.items() if k != "x-request-id"
            ]
    # The created reminder reads back as created.
    read = await fast.get(f"/reminders/{reminder_id}")
    assert read.content == created.content


def test_the_fast_routes_take_only_ordinary_requests() -> None:
    create, get = CreateRoute(fallback=None), GetRoute(fallback=None)  # type: ignore[arg-type]
    known = str(uuid.uuid4())

    def scope(method: str, path: str, **extra: Any) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], **extra}

    assert create.matches(scope("POST", "/reminders/"))[0].name == "FULL"
    assert get.matches(scope("GET", f"/reminders/{known}"))[0].name == "FULL"
    for route, request in [
        (create, scope("PUT", "/reminders/")),
        (create, scope("POST", "/reminders")),
        (create, scope("POST", "/reminders/", **{DECLINED: True})),
        (create, scope("POST", "/reminders/", root_path="/api")),
        (get, scope("HEAD", f"/reminders/{known}")),
        (get, scope("GET", f"/reminders/{known.replace('-', '')}")),
        (get, scope("GET", f"/reminders/{known}/next")),
        (get, scope("GET", "/reminders/scheduled")),
    ]:
        assert route.matches(request)[0].name == "NONE", request
    # The metrics label the route templates, as the FastAPI routes do.
    assert (create.path, get.path) == ("/reminders/", "/reminders/{reminder_id}")
