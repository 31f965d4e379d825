"""How the client turns the API's error answers into typed errors, and that its models match the API's."""

from __future__ import annotations

import httpx
import pytest
from pydantic import BaseModel

import api.schemas as server
import client.models as mine
from client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    error_for,
    field_errors,
    retry_after,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, PayloadTooLarge),
        (500, ServerError),
        (418, ApiError),
    ],
)
def test_status_codes_map_to_error_types(status: int, kind: type[ApiError]) -> None:
    error = error_for(httpx.Response(status, json={"detail": "why"}, headers={"X-Request-ID": "r1"}))
    assert type(error) is kind
    assert (error.status_code, error.detail, error.request_id) == (status, "why", "r1")
    assert "why" in str(error)


def test_a_body_that_is_not_json_becomes_the_detail() -> None:
    error = error_for(httpx.Response(502, text="Bad Gateway"))
    assert isinstance(error, ServerError)
    assert error.detail == "Bad Gateway"


@pytest.mark.parametrize(("status", "kind"), [(429, RateLimited), (503, Unavailable)])
def test_retry_later_errors_carry_retry_after(status: int, kind: type[RateLimited | Unavailable]) -> None:
    error = error_for(httpx.Response(status, json={"detail": "later"}, headers={"Retry-After": "5"}))
    assert isinstance(error, kind)
    assert error.retry_after == 5.0
    assert isinstance(error_for(httpx.Response(status)), kind)


def test_retry_after_parsing() -> None:
    assert retry_after(None) is None
    assert retry_after("2") == 2.0
    assert retry_after("-1") == 0.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None


def test_validation_errors_name_each_field() -> None:
    detail = [
        {"type": "value_error", "loc": ["body", "trigger_at"], "msg": "Value error, required"},
        {"type": "literal_error", "loc": ["body", "dst_policy", "gap"], "msg": "Input should be 'shift'"},
        {"type": "value_error", "loc": ["query", "cron"], "msg": "bad cron"},
        {"type": "missing", "loc": ["body"], "msg": "Field required"},
    ]
    error = error_for(httpx.Response(422, json={"detail": detail}))
    assert isinstance(error, ValidationFailed)
    assert error.fields == ["trigger_at", "dst_policy.gap", "cron", ""]
    assert error.errors[2] == FieldError("cron", "bad cron", "query", "value_error")


def test_field_errors_of_odd_details() -> None:
    assert field_errors("plain") == [FieldError("", "plain")]
    assert field_errors(["x"]) == [FieldError("", "x")]
    assert field_errors([{"loc": [0, "a"], "msg": "m"}]) == [FieldError("0.a", "m", "", "")]


MODELS = ["Reminder", "ReminderPage", "Preview", "PreviewFire", "DstPolicy", "AckResult", "History",
          "AuditEntry", "DeliveryEntry", "AuditPage", "DeliveryPage"]  # fmt: skip


@pytest.mark.parametrize("name", MODELS)
def test_client_models_have_the_fields_the_api_answers_with(name: str) -> None:
    # The client's models are standalone copies; this catches the API growing or renaming a field.
    theirs: type[BaseModel] = getattr(server, name)
    ours: type[BaseModel] = getattr(mine, name)
    assert set(ours.model_fields) == set(theirs.model_fields)
