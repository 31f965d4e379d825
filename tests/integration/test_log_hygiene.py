"""No log line and no error answer carries a payload (issue 17, defect 8), tested with a canary.

Every line is captured: structlog's, the standard library's, and the traceback uvicorn logs for an
exception that leaves the app (emulated as uvicorn does it, on the ``uvicorn.error`` logger).
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from api import operations
from api.app import create_app
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID

CANARY = "CANARY-b81f0c-never-logged"
JSON = {"Content-Type": "application/json"}


class UvicornLike:
    """What uvicorn's protocol does with an exception the app lets out: log it, then a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=exc)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Everything logged while the test runs (the app's configure_logging writes to sys.stderr)."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    # Module-level structlog loggers cache the logger (and its stream) they first built; earlier
    # tests built them on another stderr. Drop the caches so they are built again on this one.
    for module in list(sys.modules.values()):
        for value in list(vars(module).values()) if module else ():
            if isinstance(value, structlog._config.BoundLoggerLazyProxy):
                vars(value).pop("bind", None)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture(params=["json", "console"])
async def api(
    request: pytest.FixtureRequest, settings: Settings, pool: Pool, captured: io.StringIO
) -> AsyncIterator[httpx.AsyncClient]:
    del captured  # set up first, so that the app's logging writes into it
    app = create_app(settings.model_copy(update={"log_format": request.param, "log_level": "DEBUG"}))
    app.state.pool = pool
    transport = httpx.ASGITransport(app=UvicornLike(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:
        yield client


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user_id": 4242,
        "assistant_id": str(ASSISTANT_ID),
        "type": "one_time",
        "trigger_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "payload": orjson.dumps({"secret": CANARY}).decode(),
    }
    data.update(overrides)
    return data


def raw(data: dict[str, Any], old: bytes = b"", new: bytes = b"") -> bytes:
    return orjson.dumps(data).replace(old, new)


FAILURES = {
    "payload not JSON": raw(body(payload='{"secret": "' + CANARY + '",}')),
    "payload not an object": raw(body(payload='["' + CANARY + '"]')),
    "payload with a duplicate key": raw(body(payload='{"a": "' + CANARY + '", "a": 1}')),
    "lone surrogate in the payload text": raw(
        body(payload='{"s": "' + CANARY + ' X"}'), b" X", b" \\\\ud801"
    ),
    "lone surrogate in the payload string": raw(body(), CANARY.encode(), CANARY.encode() + b"\\ud801"),
    "payload object too deep": raw(
        body(payload={"s": CANARY, "d": [[[[]]]]}), b"[[[[]]]]", b"[" * 70 + b"]" * 70
    ),
    "missing field beside the payload": raw({k: v for k, v in body().items() if k != "type"}),
    "wrong field beside the payload": raw(body(user_id="not a number")),
    "lone surrogate beside the payload": raw(body(timezone="Z"), b'"Z"', b'"\\udfff"'),
    "body not JSON": raw(body())[:-3],
    "body with a duplicate key": raw(body())[:-1] + b',"payload":"{}"}',
}


@pytest.mark.parametrize("route", [{}, {"Idempotency-Key": "hygiene"}], ids=["fast", "fastapi"])
@pytest.mark.parametrize("content", FAILURES.values(), ids=FAILURES.keys())
async def test_refused_bodies_echo_and_log_no_payload(
    api: httpx.AsyncClient, captured: io.StringIO, content: bytes, route: dict[str, str]
) -> None:
    assert CANARY.encode() in content
    response = await api.post("/reminders/", content=content, headers={**JSON, **route})
    assert 400 <= response.status_code < 500, response.text
    orjson.loads(response.content)  # always a valid JSON answer
    assert CANARY not in response.text
    assert CANARY not in captured.getvalue()


async def test_an_unexpected_exception_logs_no_payload(
    api: httpx.AsyncClient, captured: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fails(*_args: Any, **kwargs: Any) -> Any:
        del kwargs
        # As the old failure did: an exception whose message quotes the payload it choked on.
        raise UnicodeEncodeError("utf-8", f'{{"secret": "{CANARY}"}}', 12, 13, "surrogates not allowed")

    monkeypatch.setattr(operations, "create_reminder", fails)
    for headers in (JSON, {**JSON, "Idempotency-Key": "hygiene-500"}):
        response = await api.post("/reminders/", content=raw(body()), headers=headers)
        assert response.status_code == 500
        assert CANARY not in response.text
    logged = captured.getvalue()
    assert "UnicodeEncodeError" in logged and "Exception in ASGI application" in logged
    assert "fails" in logged  # the frames are still there, to find the bug
    assert CANARY not in logged


async def test_ack_details_are_not_echoed(api: httpx.AsyncClient, captured: io.StringIO) -> None:
    rid = "00000000-0000-4000-8000-000000000001"
    content = (
        b'{"event_id": "' + rid.encode() + b'", "details": {"note": "' + CANARY.encode() + b'", "n": 1e999}}'
    )
    response = await api.post(f"/reminders/{rid}/ack", content=content, headers=JSON)
    assert response.status_code == 422, response.text
    assert CANARY not in response.text and CANARY not in captured.getvalue()
