"""The /reminders resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import orjson
from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.models import Example

from api import operations
from api.deps import CipherDep, PoolDep, Reader, Writer
from api.json_body import JsonRoute
from api.openapi import IDEMPOTENT_REPLAYED, RETRY_AFTER
from api.routes import ids as _ids  # noqa: F401  (registers the reminder_id path convertor)
from api.schemas import (
    ZONE_DESCRIPTION,
    Ack,
    AckResult,
    AuditEntry,
    AuditPage,
    DeliveryEntry,
    DeliveryPage,
    DstPolicy,
    ErrorDetail,
    History,
    Preview,
    PreviewFire,
    Reminder,
    ReminderCreate,
    ReminderPage,
    ReminderUpdate,
    Snooze,
    UserId,
    reminder_json,
)
from core.cron import InvalidSchedule, on_transition_day, upcoming, validate_cron, zone
from core.crypto import PayloadCipher
from core.exceptions import UnknownZone
from core.states import LIVE_STATUSES, DeliveryState, DstGap, DstRepeated, ReminderStatus, ReminderType


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    declared: dict[str, Any] = {"model": ErrorDetail, "description": description}
    if headers:
        declared["headers"] = headers
    return declared


# What any route here may answer besides its own codes.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("More than one credential header (X-API-Key, Authorization)"),
    401: _error("Missing or invalid credentials"),
    403: _error("The credential lacks the scope, or does not cover that assistant"),
    413: _error("Request body too large"),
    429: _error("Rate limit exceeded; see Retry-After", RETRY_AFTER),
    503: _error("The database is unavailable; see Retry-After", RETRY_AFTER),
}

# JsonRoute: bodies parsed strictly, depth bounded, duplicate keys refused (api/json_body.py).
router = APIRouter(prefix="/reminders", tags=["reminders"], responses=COMMON_ERRORS, route_class=JsonRoute)

ASSISTANT = "3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11"
CREATE_EXAMPLES: dict[str, Example] = {
    "remind_in_2_hours": Example(
        summary="One-time: remind me in 2 hours",
        value={
            "user_id": 123,
            "assistant_id": ASSISTANT,
            "type": "one_time",
            "trigger_in": "PT2H",
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

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("No such reminder (for you)")}
# A body that is not even text (invalid UTF-8) is refused before validation.
BAD_BODY: dict[int | str, dict[str, Any]] = {400: _error("The body could not be parsed")}
Page = Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")]
Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1..100)")]


def _reminder_data(row: asyncpg.Record, cipher: PayloadCipher, payload: str | None = None) -> dict[str, Any]:
    # The stored payload is ciphertext (plaintext only on rows older than encryption); the
    # response carries the decrypted JSON string (or ``payload``, the one just stored), and never
    # the key id.
    data = dict(row)
    ciphertext = data.pop("payload_ciphertext", None)
    data["payload"] = payload if payload is not None else cipher.read(ciphertext, data.get("payload"))
    data.pop("payload_key_id", None)
    data["dst_policy"] = {"gap": data.pop("dst_gap"), "repeated": data.pop("dst_repeated")}
    return data


def _reminder(row: asyncpg.Record, cipher: PayloadCipher) -> Reminder:
    return Reminder.model_validate(_reminder_data(row, cipher))


def _reminder_response(
    row: asyncpg.Record,
    cipher: PayloadCipher,
    status_code: int = status.HTTP_200_OK,
    payload: str | None = None,
) -> Response:
    """A ``Reminder`` answer serialized straight from the row (see ``reminder_json``).

    The route still declares ``response_model=Reminder`` for the OpenAPI schema; returning a
    ``Response`` skips FastAPI's validation and serialization of the model, which the row (typed
    by the database) does not need: most of the CPU of a GET went there.
    """
    body = reminder_json(_reminder_data(row, cipher, payload))
    return Response(body, status_code=status_code, media_type="application/json")


def _page(
    rows: list[asyncpg.Record], total: int, page: int, limit: int, cipher: PayloadCipher
) -> ReminderPage:
    return ReminderPage(items=[_reminder(r, cipher) for r in rows], total=total, page=page, limit=limit)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    operation_id="create_reminder",
    response_model=Reminder,
    responses={
        **BAD_BODY,
        200: {
            "model": Reminder,
            "description": "A retry with the same Idempotency-Key: the first result",
            "headers": IDEMPOTENT_REPLAYED,
        },
        409: _error("The assistant has reached its cap of live reminders"),
    },
)
async def create_reminder(
    request: Request,
    principal: Writer,
    body: Annotated[ReminderCreate, Body(openapi_examples=CREATE_EXAMPLES)],
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Retrying with the same key (per credential, 24 h) returns the first result",
        ),
    ] = None,
) -> Response:
    """Create a one-time or recurring reminder."""
    # The app's objects straight from its state: a dependency each would cost more than the lookup.
    state = request.app.state
    cipher: PayloadCipher = state.cipher
    row, created = await operations.create_reminder(
        state.pool, principal, body, cipher, state.creates, idempotency_key=idempotency_key
    )
    if created:
        # The payload this request stored: no need to decrypt what was just encrypted.
        return _reminder_response(row, cipher, status.HTTP_201_CREATED, body.payload)
    # A retry of a create that already happened: the same reminder, nothing new made.
    response = _reminder_response(row, cipher, status.HTTP_200_OK)
    response.headers["Idempotent-Replayed"] = "true"
    return response


@router.get("/scheduled", operation_id="list_scheduled")
async def list_scheduled(
    pool: PoolDep, cipher: CipherDep, principal: Reader, page: Page = 1, limit: Limit = 20
) -> ReminderPage:
    """The active schedule: pending and active reminders, soonest fire first."""
    rows, total = await operations.list_scheduled(pool, principal, page=page, limit=limit)
    return _page(rows, total, page, limit, cipher)


Count = Annotated[int, Query(ge=1, le=100, description="How many fires (1..100)")]


def _preview(expression: str, timezone: str, policy: DstPolicy, fires: list[datetime]) -> Preview:
    tz = zone(timezone)
    return Preview(
        cron_expression=expression,
        timezone=timezone,
        dst_policy=policy,
        fires=[
            PreviewFire(utc=f, local=f.astimezone(tz), dst_transition_day=on_transition_day(f, timezone))
            for f in fires
        ],
    )


@router.get("/preview", operation_id="preview_schedule")
async def preview_schedule(
    principal: Reader,
    cron: Annotated[
        str, Query(min_length=1, max_length=200, description="5 fields, or 6 with seconds first")
    ],
    timezone: Annotated[str, Query(min_length=1, max_length=64, description=ZONE_DESCRIPTION)] = "UTC",
    count: Count = 5,
    dst_gap: Annotated[DstGap, Query(description="As a reminder's dst_policy.gap")] = DstGap.SHIFT,
    dst_repeated: Annotated[
        DstRepeated, Query(description="As a reminder's dst_policy.repeated")
    ] = DstRepeated.FIRST,
) -> Preview:
    """The next fires of a cron expression in a time zone, flagging DST transition days."""
    del principal  # any reader may preview; nothing is stored or read
    try:
        expression, tz_name = validate_cron(cron), zone(timezone).key
        fires = upcoming(expression, tz_name, datetime.now(UTC), count, gap=dst_gap, repeated=dst_repeated)
    except InvalidSchedule as exc:
        field = "timezone" if isinstance(exc, UnknownZone) else "cron"
        raise RequestValidationError(
            [{"type": "value_error", "loc": ["query", field], "msg": str(exc), "input": None}]
        ) from None
    return _preview(expression, tz_name, DstPolicy(gap=dst_gap, repeated=dst_repeated), fires)


@router.get("/user/{user_id}", operation_id="list_user_reminders")
async def list_user_reminders(
    pool: PoolDep,
    cipher: CipherDep,
    principal: Reader,
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
    return _page(rows, total, page, limit, cipher)


@router.get(
    "/{reminder_id:reminder_id}", operation_id="get_reminder", response_model=Reminder, responses=NOT_FOUND
)
async def get_reminder(request: Request, principal: Reader, reminder_id: UUID) -> Response:
    """One reminder."""
    state = request.app.state
    row = await operations.get_reminder(state.pool, principal, reminder_id, state.reads)
    return _reminder_response(row, state.cipher)


@router.get("/{reminder_id:reminder_id}/next", operation_id="list_next_fires", responses=NOT_FOUND)
async def list_next_fires(pool: PoolDep, principal: Reader, reminder_id: UUID, count: Count = 5) -> Preview:
    """The next fires of a reminder, from its next one (a one-time reminder has at most one).

    A recurring reminder's list stops at its end conditions (``until``, ``max_runs``).
    """
    row = await operations.get_reminder(pool, principal, reminder_id)
    policy = DstPolicy(gap=row["dst_gap"], repeated=row["dst_repeated"])
    at = row["next_run_at"] if row["status"] in LIVE_STATUSES else None
    fires: list[datetime] = []
    if at is not None and row["type"] == ReminderType.RECURRING:
        fires = [
            at,
            *upcoming(
                row["cron_expression"],
                row["timezone"],
                at,
                count - 1,
                gap=policy.gap,
                repeated=policy.repeated,
            ),
        ]
        fires = [f for f in fires if row["until"] is None or f <= row["until"]]
        if row["max_runs"] is not None:
            fires = fires[: max(0, row["max_runs"] - row["runs_count"])]
    elif at is not None:
        fires = [at]
    return _preview(row["cron_expression"] or "", row["timezone"], policy, fires)


@router.get("/{reminder_id:reminder_id}/history", operation_id="get_reminder_history", responses=NOT_FOUND)
async def get_reminder_history(
    pool: PoolDep, principal: Reader, reminder_id: UUID, page: Page = 1, limit: Limit = 20
) -> History:
    """The reminder's audit trail and deliveries, newest first (both paged alike)."""
    audit, audit_total, deliveries, deliveries_total = await operations.history(
        pool, principal, reminder_id, page=page, limit=limit
    )
    return History(
        reminder_id=reminder_id,
        audit=AuditPage(
            items=[
                AuditEntry(
                    at=r["at"], actor=r["actor"], action=r["action"], details=orjson.loads(r["details"])
                )
                for r in audit
            ],
            total=audit_total,
        ),
        deliveries=DeliveryPage(
            items=[DeliveryEntry.model_validate(dict(r)) for r in deliveries], total=deliveries_total
        ),
        page=page,
        limit=limit,
    )


@router.patch(
    "/{reminder_id:reminder_id}",
    operation_id="update_reminder",
    responses={**NOT_FOUND, **BAD_BODY, 409: _error("Impossible transition, or the reminder ended")},
)
async def update_reminder(
    pool: PoolDep, cipher: CipherDep, principal: Writer, reminder_id: UUID, body: ReminderUpdate
) -> Reminder:
    """Pause (``{"status": "paused"}``), resume (``{"status": "active"}``), or change the schedule
    (``trigger_at``, ``cron_expression``, ``timezone``), payload, policies or end conditions; the
    next fire is recomputed in the same transaction."""
    row = await operations.update_reminder(pool, principal, reminder_id, body, cipher)
    return _reminder(row, cipher)


@router.delete(
    "/{reminder_id:reminder_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="cancel_reminder",
    responses=NOT_FOUND,
)
async def cancel_reminder(pool: PoolDep, principal: Writer, reminder_id: UUID) -> Response:
    """Cancel: the reminder stays (status ``cancelled``) for audit and never fires again."""
    await operations.cancel_reminder(pool, principal, reminder_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{reminder_id:reminder_id}/snooze",
    operation_id="snooze_reminder",
    responses={**NOT_FOUND, **BAD_BODY, 409: _error("Not pending or active")},
)
async def snooze_reminder(
    pool: PoolDep, cipher: CipherDep, principal: Writer, reminder_id: UUID, body: Snooze
) -> Reminder:
    """Move the next occurrence only (``{"for": "PT10M"}`` or ``{"until": ...}``)."""
    row = await operations.snooze(pool, principal, reminder_id, delay=body.for_, until=body.until)
    return _reminder(row, cipher)


@router.post(
    "/{reminder_id:reminder_id}/skip",
    operation_id="skip_next_occurrence",
    responses={**NOT_FOUND, 409: _error("Not a recurring reminder that can skip")},
)
async def skip_next_occurrence(
    pool: PoolDep, cipher: CipherDep, principal: Writer, reminder_id: UUID
) -> Reminder:
    """Skip the next occurrence of a recurring reminder."""
    return _reminder(await operations.skip_next(pool, principal, reminder_id), cipher)


@router.post(
    "/{reminder_id:reminder_id}/ack",
    operation_id="ack_event",
    responses={
        **NOT_FOUND,
        **BAD_BODY,
        409: _error("The event was dead-lettered"),
        503: _error(
            "The database is unavailable, or the event is not recorded yet (its poller stopped "
            "between push and commit; the next claim records it); see Retry-After",
            RETRY_AFTER,
        ),
    },
)
async def ack_event(
    pool: PoolDep, cipher: CipherDep, principal: Writer, reminder_id: UUID, body: Ack
) -> AckResult:
    """Confirm an event; ``action: complete`` ends a recurring chain."""
    row = await operations.ack_event(pool, principal, reminder_id, body)
    return AckResult(event_id=body.event_id, state=DeliveryState.ACKED, reminder=_reminder(row, cipher))
