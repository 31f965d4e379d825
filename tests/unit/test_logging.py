"""Log lines are JSON objects, uvicorn's included, with the ids bound to the context."""

from __future__ import annotations

import logging

import orjson
import pytest
import structlog

from core.logging import configure_logging

# Every test here configures logging: put it back after each.
pytestmark = pytest.mark.usefixtures("restore_logging")


def lines(text: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_service_events_are_json_with_bound_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    with structlog.contextvars.bound_contextvars(request_id="req-1"):
        structlog.get_logger("api").info("create", reminder_id="r-1", assistant_id="a-1")
    (line,) = lines(capsys.readouterr().err)
    assert line["event"] == "create"
    assert (line["reminder_id"], line["assistant_id"], line["request_id"]) == ("r-1", "a-1", "req-1")
    assert line["level"] == "info" and "timestamp" in line


def test_uvicorn_access_log_becomes_fields(capsys: pytest.CaptureFixture[str]) -> None:
    # As uvicorn configures it before building the app: its own handler, no propagation.
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.StreamHandler())
    access.propagate = False
    configure_logging("INFO", "json")
    with structlog.contextvars.bound_contextvars(request_id="req-2"):
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    (line,) = lines(capsys.readouterr().err)
    assert line["event"] == "http_request"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert line["request_id"] == "req-2"


def test_console_format_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "console")
    structlog.get_logger("api").info("create", reminder_id="r-1")
    text = capsys.readouterr().err
    assert "create" in text and "r-1" in text
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text.strip().splitlines()[0])
