"""The event an assistant takes from ``queue:to_assistant``, published in the OpenAPI document.

The service does not call the assistant over HTTP, so the event is declared as an OpenAPI 3.1
webhook (``reminder_triggered``): the way the document says "this is what you will receive". The
bytes are made by ``core.events.encode_event``; tests/unit/test_event_schema.py holds the two equal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Body, FastAPI
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from api import examples
from core.events import EVENT_TYPE
from core.states import ReminderType

QUEUE = "queue:to_assistant"


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class ReminderEventPayload(BaseModel):
    """The occurrence: which reminder, for whom, its payload and its times (UTC, ISO 8601, ``Z``)."""

    model_config = ConfigDict(extra="forbid")

    reminder_id: UUID = Field(description="The reminder; use it in POST /reminders/{reminder_id}/ack.")
    user_id: int = Field(description="The user the reminder is for.")
    reminder_type: ReminderType
    payload: dict[str, Any] = Field(description="The reminder's payload, as a JSON object (not a string).")
    scheduled_for: datetime = Field(
        description="When this occurrence was due: trigger_at, or the cron fire of a recurring reminder."
    )
    triggered_at: datetime = Field(description="When a poller claimed the occurrence (the database clock).")
    created_at: datetime = Field(description="When the reminder was created.")
    # Absent rather than null when not late: the schema allows no null (SkipJsonSchema) and shows
    # no default.
    late: Literal[True] | SkipJsonSchema[None] = Field(
        default=None,
        description="Only on an occurrence that went out more than misfire_grace_seconds late.",
        json_schema_extra=_no_default,
    )
    lateness_seconds: float | SkipJsonSchema[None] = Field(
        default=None,
        description="Only with late: triggered_at - scheduled_for, in seconds, to the millisecond.",
        json_schema_extra=_no_default,
    )


class ReminderEvent(BaseModel):
    """One event in the Redis list ``queue:to_assistant`` (and ``queue:to_assistant:dead``)."""

    model_config = ConfigDict(extra="forbid")

    event_id: UUID = Field(
        description="The occurrence's id (UUID v5 of the reminder and its scheduled time): the same on "
        "every attempt. Deduplicate on it, and ack it."
    )
    attempt: int = Field(ge=1, description="1 for the first push, then 2, 3, ... for each redelivery.")
    assistant_id: UUID = Field(description="The assistant the reminder belongs to.")
    event: Literal["reminder_triggered"]  # core.events.EVENT_TYPE (a test holds them equal)
    payload: ReminderEventPayload


def install_webhooks(app: FastAPI) -> None:
    """Declare the event as the webhook ``reminder_triggered`` of the app's OpenAPI document."""

    @app.webhooks.post(
        EVENT_TYPE,
        operation_id="reminder_triggered",
        summary="An event in the Redis list queue:to_assistant",
        description=f"Not an HTTP call: the service RPUSHes this JSON to the Redis list `{QUEUE}` when "
        "a reminder fires (and again, with attempt + 1, until it is acknowledged with "
        "POST /reminders/{reminder_id}/ack). See docs/events.md.",
        response_description="Nothing: acknowledge with POST /reminders/{reminder_id}/ack instead",
        tags=["events"],
    )
    async def reminder_triggered(
        event: Annotated[
            ReminderEvent,
            Body(
                openapi_examples={
                    "on_time": {"summary": "On time", "value": examples.EVENT},
                    "late": {
                        "summary": "A late catch-up (misfire policy fire_once)",
                        "value": examples.LATE_EVENT,
                    },
                }
            ),
        ],
    ) -> None:
        del event  # a declaration only: nothing serves it
