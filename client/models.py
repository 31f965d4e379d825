"""What the API answers, as small standalone models: an assistant needs only httpx and pydantic.

They mirror ``api.schemas`` (a unit test checks the fields match) but ignore unknown fields, so a
client keeps working against a newer server that adds some.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict

ReminderType = Literal["one_time", "recurring"]
# "quarantined": set aside by a poller that could not plan or read it (docs/design.md).
ReminderStatus = Literal["pending", "active", "paused", "completed", "cancelled", "quarantined"]
MisfirePolicy = Literal["skip", "fire_once", "fire_all"]
DstGap = Literal["shift", "skip"]
DstRepeated = Literal["first", "both"]
AckAction = Literal["continue", "complete"]
AckOutcome = Literal["ok", "error"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DstPolicy(_Model):
    """What a recurring reminder's fires do when the clock changes in its time zone."""

    gap: DstGap = "shift"
    repeated: DstRepeated = "first"


class Reminder(_Model):
    """A reminder as the API stores it, with its schedule state."""

    id: UUID
    user_id: int
    assistant_id: UUID
    created_by_assistant_id: UUID
    type: ReminderType
    trigger_at: datetime | None
    cron_expression: str | None
    timezone: str
    payload: str
    status: ReminderStatus
    next_run_at: datetime | None
    last_triggered_at: datetime | None
    misfire_policy: MisfirePolicy
    misfire_grace_seconds: int
    ack_required: bool
    start_at: datetime | None
    until: datetime | None
    max_runs: int | None
    runs_count: int
    dst_policy: DstPolicy
    created_at: datetime
    updated_at: datetime

    @property
    def payload_data(self) -> dict[str, Any]:
        """The payload decoded (the API carries it as a JSON string)."""
        decoded: dict[str, Any] = orjson.loads(self.payload)
        return decoded


class ReminderPage(_Model):
    """One page of reminders and the total across all pages."""

    items: list[Reminder]
    total: int
    page: int
    limit: int


class PreviewFire(_Model):
    """One upcoming fire, in UTC and in the schedule's own time zone."""

    utc: datetime
    local: datetime
    dst_transition_day: bool


class Preview(_Model):
    """The next fires of a schedule."""

    cron_expression: str
    timezone: str
    dst_policy: DstPolicy
    fires: list[PreviewFire]


class AckResult(_Model):
    """The delivery's state after an ack, and the reminder."""

    event_id: UUID
    state: Literal["acked"]
    reminder: Reminder


class AuditEntry(_Model):
    """One audited action on a reminder."""

    at: datetime
    actor: str
    action: str
    details: dict[str, Any]


class DeliveryEntry(_Model):
    """One occurrence's delivery: its event id, attempts and state."""

    event_id: UUID
    scheduled_for: datetime
    attempt: int
    state: Literal["pending", "sent", "acked", "dead", "stopped"]
    late: bool
    created_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    next_attempt_at: datetime | None
    dead_lettered_at: datetime | None


class AuditPage(_Model):
    """A page of audit entries and their total."""

    items: list[AuditEntry]
    total: int


class DeliveryPage(_Model):
    """A page of deliveries and their total."""

    items: list[DeliveryEntry]
    total: int


class History(_Model):
    """A reminder's audit trail and deliveries, newest first."""

    reminder_id: UUID
    audit: AuditPage
    deliveries: DeliveryPage
    page: int
    limit: int
