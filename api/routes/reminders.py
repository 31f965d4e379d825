"""The /reminders resource."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Body, Path, Query, Response, status
from fastapi.openapi.models import Example

from api import operations
from api.deps import CurrentPrincipal, PoolDep
from api.schemas import (
    Ack,
    AckResult,
    Reminder,
    ReminderCreate,
    ReminderPage,
    ReminderStatus,
    ReminderType,
    StatusChange,
    UserId,
)

router = APIRouter(prefix="/reminders", tags=["reminders"])

ASSISTANT = "3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11"
CREATE_EXAMPLES: dict[str, Example] = {
    "remind_in_2_hours": Example(
        summary="One-time: remind me in 2 hours",
        value={
            "user_id": 123,
            "assistant_id": ASSISTANT,
            "type": "one_time",
            "trigger_at": "2025-04-06T12:00:00Z",
            "payload": '{"text": "Meeting", "user_id": 123, "priority": "normal"}',
        },
    ),
    "currency_monitor": Example(
        summary="Recurring: watch an exchange rate every 5 minutes",
        value={
            "user_id": 123,
            "assistant_id": ASSISTANT,
            "type": "recurring",
            "cron_expression": "*/5 * * * *",
            "payload": '{"monitor_type": "currency", "currency_pair": "USD/EUR", '
            '"threshold": 1.05, "direction": "above"}',
        },
    ),
    "daily_check_in": Example(
        summary="Recurring: every morning at 10:00 in the user's time zone",
        value={
            "user_id": 123,
            "assistant_id": ASSISTANT,
            "type": "recurring",
            "cron_expression": "0 10 * * *",
            "timezone": "Europe/Berlin",
            "payload": '{"check_type": "daily_report", "user_id": 123, "report_id": "daily_456"}',
        },
    ),
}

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such reminder (for you)"}}
Page = Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1..100)")]


def _reminder(row: asyncpg.Record) -> Reminder:
    return Reminder.model_validate(dict(row))


def _page(rows: list[asyncpg.Record], total: int, page: int, limit: int) -> ReminderPage:
    return ReminderPage(items=[_reminder(r) for r in rows], total=total, page=page, limit=limit)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    operation_id="create_reminder",
    responses={403: {"description": "The credential does not cover this assistant"}},
)
async def create_reminder(
    pool: PoolDep,
    principal: CurrentPrincipal,
    body: Annotated[ReminderCreate, Body(openapi_examples=CREATE_EXAMPLES)],
) -> Reminder:
    """Create a one-time or recurring reminder."""
    return _reminder(await operations.create_reminder(pool, principal, body))


@router.get("/scheduled", operation_id="list_scheduled")
async def list_scheduled(
    pool: PoolDep, principal: CurrentPrincipal, page: Page = 1, limit: Limit = 20
) -> ReminderPage:
    """The active schedule: pending and active reminders, soonest fire first."""
    rows, total = await operations.list_scheduled(pool, principal, page=page, limit=limit)
    return _page(rows, total, page, limit)


@router.get("/user/{user_id}", operation_id="list_user_reminders")
async def list_user_reminders(
    pool: PoolDep,
    principal: CurrentPrincipal,
    user_id: Annotated[UserId, Path()],
    status_: Annotated[ReminderStatus | None, Query(alias="status")] = None,
    type_: Annotated[ReminderType | None, Query(alias="type")] = None,
    page: Page = 1,
    limit: Limit = 20,
) -> ReminderPage:
    """One user's reminders, oldest first, filtered by status and type."""
    rows, total = await operations.list_user_reminders(
        pool, principal, user_id, status=status_, kind=type_, page=page, limit=limit
    )
    return _page(rows, total, page, limit)


@router.get("/{reminder_id}", operation_id="get_reminder", responses=NOT_FOUND)
async def get_reminder(pool: PoolDep, principal: CurrentPrincipal, reminder_id: UUID) -> Reminder:
    """One reminder."""
    return _reminder(await operations.get_reminder(pool, principal, reminder_id))


@router.patch(
    "/{reminder_id}",
    operation_id="change_reminder_status",
    responses={**NOT_FOUND, 409: {"description": "Impossible transition"}},
)
async def change_status(
    pool: PoolDep, principal: CurrentPrincipal, reminder_id: UUID, body: StatusChange
) -> Reminder:
    """Pause (``{"status": "paused"}``) or resume (``{"status": "active"}``)."""
    return _reminder(await operations.change_status(pool, principal, reminder_id, body.status))


@router.delete(
    "/{reminder_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="cancel_reminder",
    responses=NOT_FOUND,
)
async def cancel_reminder(pool: PoolDep, principal: CurrentPrincipal, reminder_id: UUID) -> Response:
    """Cancel: the reminder stays (status ``cancelled``) for audit and never fires again."""
    await operations.cancel_reminder(pool, principal, reminder_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{reminder_id}/ack",
    operation_id="ack_event",
    responses={**NOT_FOUND, 409: {"description": "The event was dead-lettered"}},
)
async def ack_event(
    pool: PoolDep, principal: CurrentPrincipal, reminder_id: UUID, body: Ack
) -> AckResult:
    """Confirm an event; ``action: complete`` ends a recurring chain."""
    row = await operations.ack_event(pool, principal, reminder_id, body)
    return AckResult(event_id=body.event_id, state="acked", reminder=_reminder(row))
