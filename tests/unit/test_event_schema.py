"""The event published in the OpenAPI document (webhook ``reminder_triggered``) is what the poller pushes.

Events are built with ``core.events.encode_event``, the function that makes the bytes pushed to
Redis, and validated against the JSON schema the document publishes, both ways: the schema admits
no key the event lacks a declaration for (``additionalProperties: false``), and every key it
requires is pushed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jsonschema_rs
import orjson
import pytest

from core.events import EVENT_TYPE, Occurrence, encode_event, event_id_for
from tests.unit.test_openapi import document

SCHEDULED = datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
REMINDER = UUID("c0ffee00-1111-4222-8333-444455556666")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return document()


def _event_ref(schema: dict[str, Any]) -> str:
    body = schema["webhooks"][EVENT_TYPE]["post"]["requestBody"]["content"]["application/json"]
    ref: str = body["schema"]["$ref"]
    return ref


def _component(schema: dict[str, Any], ref: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def _pushed(*, late: bool, attempt: int = 1) -> dict[str, Any]:
    triggered = SCHEDULED + (timedelta(minutes=4, milliseconds=250) if late else timedelta(milliseconds=7))
    occurrence = Occurrence(
        event_id=event_id_for(REMINDER, SCHEDULED),
        attempt=attempt,
        reminder_id=REMINDER,
        assistant_id=UUID("0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d"),
        user_id=987_654_321,
        reminder_type="recurring",
        payload_json='{"check_type":"weekly_report","nested":{"n":[1,2.5,null]}}',
        scheduled_for=SCHEDULED,
        triggered_at=triggered,
        created_at=SCHEDULED - timedelta(days=30),
        ack_required=True,
        late=late,
    )
    decoded: dict[str, Any] = orjson.loads(encode_event(occurrence))
    return decoded


@pytest.mark.parametrize(("late", "attempt"), [(False, 1), (True, 1), (False, 4)])
def test_pushed_events_are_valid_against_the_published_schema(
    schema: dict[str, Any], late: bool, attempt: int
) -> None:
    validator = jsonschema_rs.validator_for(
        {"$ref": _event_ref(schema), "components": schema["components"]}, validate_formats=True
    )
    event = _pushed(late=late, attempt=attempt)
    errors = [error.message for error in validator.iter_errors(event)]
    assert not errors, errors


def test_the_schema_declares_exactly_the_keys_pushed(schema: dict[str, Any]) -> None:
    event = _component(schema, _event_ref(schema))
    body = _component(schema, event["properties"]["payload"]["$ref"])
    on_time, late = _pushed(late=False), _pushed(late=True)
    # Every pushed key is declared, and nothing undeclared may appear.
    assert set(late) == set(event["properties"]) and event["additionalProperties"] is False
    assert set(late["payload"]) == set(body["properties"]) and body["additionalProperties"] is False
    # Every required key is pushed, late or not; what only a late event carries is optional.
    assert set(event["required"]) == set(on_time)
    assert set(body["required"]) == set(on_time["payload"])
    assert set(late["payload"]) - set(on_time["payload"]) == {"late", "lateness_seconds"}
    assert event["properties"]["event"]["const"] == EVENT_TYPE


def test_an_event_with_an_unknown_key_is_refused(schema: dict[str, Any]) -> None:
    # The other direction: the schema is strict, so a key the poller started pushing without
    # declaring it would fail the validation above.
    validator = jsonschema_rs.validator_for({"$ref": _event_ref(schema), "components": schema["components"]})
    event = _pushed(late=False)
    event["payload"]["priority"] = "high"
    assert not validator.is_valid(event)
    del event["payload"]["priority"], event["payload"]["triggered_at"]
    assert not validator.is_valid(event)
