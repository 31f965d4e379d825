"""Realistic examples of the API's answers and of the event, for the OpenAPI document.

Without them Swagger UI and generated clients show placeholders ("string", a fixed UUID, 0) that
say nothing of what a reminder looks like. They tell one story: the "remind me in 2 hours" reminder
of the README, created at 12:00 UTC for 14:00, fired, then acknowledged.
tests/unit/test_openapi.py validates every example against its schema.
"""

from __future__ import annotations

from typing import Any

ASSISTANT = "3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11"
REMINDER_ID = "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b"
EVENT_ID = "0b6f7c1e-5d2a-5c4e-9a43-2f1e8d7c6b5a"
PAYLOAD = {"text": "Meeting", "user_id": 123, "priority": "normal"}
CREATED = "2026-12-02T12:00:00Z"
DUE = "2026-12-02T14:00:00Z"
FIRED = "2026-12-02T14:00:00.004Z"
ACKED = "2026-12-02T14:00:01.270Z"

DST_POLICY: dict[str, Any] = {"gap": "shift", "repeated": "first"}

REMINDER: dict[str, Any] = {
    "id": REMINDER_ID,
    "user_id": 123,
    "assistant_id": ASSISTANT,
    "created_by_assistant_id": ASSISTANT,
    "type": "one_time",
    "trigger_at": DUE,
    "cron_expression": None,
    "timezone": "UTC",
    "payload": '{"text":"Meeting","user_id":123,"priority":"normal"}',
    "status": "pending",
    "next_run_at": DUE,
    "last_triggered_at": None,
    "misfire_policy": "fire_once",
    "misfire_grace_seconds": 60,
    "ack_required": True,
    "start_at": None,
    "until": None,
    "max_runs": None,
    "runs_count": 0,
    "dst_policy": DST_POLICY,
    "created_at": CREATED,
    "updated_at": CREATED,
}

COMPLETED = {
    **REMINDER,
    "status": "completed",
    "next_run_at": None,
    "last_triggered_at": FIRED,
    "runs_count": 1,
    "updated_at": ACKED,
}

REMINDER_PAGE: dict[str, Any] = {"items": [REMINDER], "total": 1, "page": 1, "limit": 20}

ACK_RESULT: dict[str, Any] = {"event_id": EVENT_ID, "state": "acked", "reminder": COMPLETED}

PREVIEW: dict[str, Any] = {
    "cron_expression": "0 10 * * *",
    "timezone": "Europe/Berlin",
    "dst_policy": DST_POLICY,
    "fires": [
        {"utc": "2026-12-03T09:00:00Z", "local": "2026-12-03T10:00:00+01:00", "dst_transition_day": False},
        {"utc": "2026-12-04T09:00:00Z", "local": "2026-12-04T10:00:00+01:00", "dst_transition_day": False},
    ],
}

AUDIT_ENTRY: dict[str, Any] = {
    "at": ACKED,
    "actor": "bootstrap",
    "action": "ack",
    "details": {
        "event_id": EVENT_ID,
        "result": "ok",
        "action": "continue",
        "details": None,
        "request_id": "5f0c3a9e2b7d4e1f8a6c0d2b4e6f8a1c",
        "actor_assistants": "all",
    },
}

DELIVERY: dict[str, Any] = {
    "event_id": EVENT_ID,
    "scheduled_for": DUE,
    "attempt": 1,
    "state": "acked",
    "late": False,
    "created_at": FIRED,
    "sent_at": FIRED,
    "acked_at": ACKED,
    "next_attempt_at": None,
    "dead_lettered_at": None,
}

HISTORY: dict[str, Any] = {
    "reminder_id": REMINDER_ID,
    "audit": {"items": [AUDIT_ENTRY], "total": 3},
    "deliveries": {"items": [DELIVERY], "total": 1},
    "page": 1,
    "limit": 20,
}

ERROR: dict[str, Any] = {"detail": "reminder not found"}

EVENT: dict[str, Any] = {
    "event_id": EVENT_ID,
    "attempt": 1,
    "assistant_id": ASSISTANT,
    "event": "reminder_triggered",
    "payload": {
        "reminder_id": REMINDER_ID,
        "user_id": 123,
        "reminder_type": "one_time",
        "payload": PAYLOAD,
        "scheduled_for": DUE,
        "triggered_at": FIRED,
        "created_at": CREATED,
    },
}

LATE_EVENT: dict[str, Any] = {
    **EVENT,
    "payload": {
        **EVENT["payload"],
        "triggered_at": "2026-12-02T14:03:20.500Z",
        "late": True,
        "lateness_seconds": 200.5,
    },
}

# By component name; api/openapi.py sets them after FastAPI built the document, because FastAPI
# drops every null from the document, examples included (a Reminder without its null fields).
COMPONENTS: dict[str, dict[str, Any]] = {
    "Reminder": REMINDER,
    "ReminderPage": REMINDER_PAGE,
    "AckResult": ACK_RESULT,
    "Preview": PREVIEW,
    "History": HISTORY,
    "ErrorDetail": ERROR,
    "ReminderEvent": EVENT,
}
