"""Request and response bodies of the REST API."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from core import jsontext
from core.cron import validate_cron as _validate_cron
from core.cron import zone
from core.states import DeliveryState, DstGap, DstRepeated, MisfirePolicy, ReminderStatus, ReminderType

# Parsing a cron expression with croniter is most of validating a create body; the same few
# expressions come back again and again. Only valid ones are cached (an error is not), keyed on the
# exact text, so every answer (normalized text or InvalidSchedule) is what validate_cron gives.
validate_cron = lru_cache(maxsize=4096)(_validate_cron)

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_GRACE_SECONDS = 7 * 24 * 3600
MAX_TRIGGER_IN = timedelta(days=3653)
BIGINT_MAX = 2**63 - 1

# The instants the service takes: every one the scheduler can compute a next fire from and that
# PostgreSQL, croniter and the event format hold as an aware time. Outside it (year 1, year 9999)
# a time used to be stored as -infinity/+infinity and stop every poller's claim.
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)
INSTANT_RANGE = "from 1970-01-01T00:00:00Z up to, not including, 2200-01-01T00:00:00Z"


def _in_range(value: datetime) -> datetime:
    if not EARLIEST_INSTANT <= value < LATEST_INSTANT:
        raise ValueError(f"must be {INSTANT_RANGE}")
    return value


Instant = Annotated[
    AwareDatetime,
    AfterValidator(_in_range),
    Field(description=f"An ISO 8601 time with a UTC offset, {INSTANT_RANGE}."),
]

ZONE_DESCRIPTION = (
    "An IANA time zone name, spelled (and capitalised) as IANA does: Europe/Berlin, "
    "America/Argentina/Buenos_Aires, UTC. Any name of the tz database's zone list is taken except "
    "those that are not places (Factory, localtime, posixrules); a folder such as Europe is not a zone."
)

UserId = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
# In a body, the JSON type the schema names and no other: lax validation read true as 1, "7" as 7
# and "off" as false. (UserId alone stays lax for the path, where every value is text.)
JsonInt = Annotated[int, Strict()]
JsonBool = Annotated[bool, Strict()]
BodyUserId = Annotated[UserId, Strict()]


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):  # lax timedelta validation read true as one second
        raise PydanticCustomError("time_delta_type", "Input should be an ISO 8601 duration or seconds")
    return value


# What the API accepts for a duration: an ISO 8601 duration or a number of seconds (pydantic's own
# schema for timedelta says only the string).
Duration = Annotated[
    timedelta,
    BeforeValidator(_not_a_boolean),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "duration", "description": "ISO 8601 duration, e.g. PT2H"},
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": MAX_TRIGGER_IN.total_seconds(),
                    "description": "Seconds",
                },
            ]
        }
    ),
]


def canonical_payload(value: str) -> str:
    """A JSON object's text, compact, numbers as written; or ValueError saying what is wrong."""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        decoded, text = jsontext.canonical(value)
    except jsontext.JsonTextError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise ValueError('must be a JSON object, like \'{"text": "Meeting"}\' or {"text": "Meeting"}')
    # Canonical compact text, so the poller can embed it in events without parsing it again.
    return text


def _payload_text(value: object) -> object:
    """An object given as ``payload`` becomes its JSON text, numbers as the body wrote them."""
    if isinstance(value, dict):
        try:
            return jsontext.dumps(value)
        except jsontext.JsonTextError as exc:
            raise ValueError(str(exc)) from None
    return value


# The payload: JSON text of an object, or the object itself (stored and returned as its text).
Payload = Annotated[
    str,
    BeforeValidator(_payload_text),
    Field(max_length=MAX_PAYLOAD_BYTES),
    AfterValidator(canonical_payload),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_PAYLOAD_BYTES},
                {"type": "object", "additionalProperties": True},
            ],
            "description": "A JSON object, as a string or as the object itself (at most 64 KiB); "
            "stored and returned as its compact text, numbers exactly as written.",
            "examples": ['{"text": "Meeting"}', {"text": "Meeting"}],
        }
    ),
]


def _jsonb_value(value: Any, path: str, depth: int) -> Any:
    """``value`` as plain JSON types PostgreSQL's jsonb stores and we read back unchanged."""
    if depth > jsontext.MAX_DEPTH:
        raise ValueError(f"nested deeper than {jsontext.MAX_DEPTH} levels")
    if isinstance(value, dict):
        # Keys checked before they go into a path; cut short, as a hostile one may be long.
        return {
            _jsonb_text(k, path): _jsonb_value(v, f"{path}.{k[:40]}", depth + 1) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_jsonb_value(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, str):
        return _jsonb_text(value, path)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        # jsonb would hold more, but the audit trail is written and read with orjson: 64 bits.
        if not -(2**63) <= value < 2**63:
            raise ValueError(f"{path}: integers must fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):  # 1e400 overflows to infinity, which jsonb cannot hold
            raise ValueError(f"{path}: numbers must be finite doubles")
        return float(value)  # history reads the audit trail back with orjson: doubles
    raise ValueError(f"{path}: not a JSON value")


def _jsonb_text(value: str, path: str) -> str:
    # jsonb refuses NUL ("unsupported Unicode escape sequence"); no UTF-8 holds a lone surrogate.
    if "\x00" in value:
        raise ValueError(f"{path}: must not contain NUL characters (\\u0000)")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError(f"{path}: must not contain lone UTF-16 surrogates") from None
    return value


def storable_details(value: dict[str, Any]) -> dict[str, Any]:
    """Ack details as PostgreSQL's jsonb can store them, or ValueError naming what cannot be."""
    details: dict[str, Any] = _jsonb_value(value, "details", 1)
    if len(orjson.dumps(details)) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"larger than {MAX_PAYLOAD_BYTES} bytes")
    return details


class DstPolicy(BaseModel):
    """What a recurring reminder's fires do when the clock changes in its time zone."""

    model_config = ConfigDict(extra="forbid")

    gap: DstGap = Field(
        default=DstGap.SHIFT,
        description="A fire whose local time is skipped (spring forward): goes out right after the "
        "jump (shift), or not at all (skip).",
    )
    repeated: DstRepeated = Field(
        default=DstRepeated.FIRST,
        description="A fixed-time fire in a repeated hour (fall back): goes out once, in the first "
        "pass (first), or in both passes (both). Wildcard and interval schedules always keep "
        "firing at real elapsed intervals.",
    )


class ReminderCreate(BaseModel):
    """A new reminder: one-time at ``trigger_at``, or recurring on ``cron_expression``."""

    model_config = ConfigDict(extra="forbid")

    user_id: BodyUserId
    assistant_id: UUID
    type: ReminderType
    trigger_in: Duration | None = Field(
        default=None,
        description="Instead of trigger_at, for one-time reminders: how long from now, as an "
        "ISO 8601 duration (PT2H) or seconds (7200). The stored trigger_at is absolute UTC.",
        examples=["PT2H", 7200],
    )
    trigger_at: Instant | None = Field(default=None, validate_default=True)
    cron_expression: str | None = Field(default=None, max_length=200, validate_default=True)
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description=ZONE_DESCRIPTION)
    payload: Payload
    misfire_policy: MisfirePolicy = Field(
        default=MisfirePolicy.FIRE_ONCE,
        description="What a fire missed by more than misfire_grace_seconds (downtime, a pause) "
        "does: skip it, send one late catch-up event (fire_once), or send each (fire_all, "
        "at most 1,000).",
    )
    misfire_grace_seconds: JsonInt = Field(
        default=60,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How late a fire may go out and still count as on time.",
    )
    start_at: Instant | None = Field(default=None, description="Recurring only: no fire before this time.")
    until: Instant | None = Field(
        default=None, description="Recurring only: no fire after this time; then it is completed."
    )
    max_runs: JsonInt | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Recurring only: completed after this many fires.",
    )
    ack_required: JsonBool = Field(
        default=True,
        description="Whether events must be acknowledged; unacknowledged ones are redelivered. "
        "False for fire-and-forget reminders (a one-time one is then completed when it fires).",
    )
    dst_policy: DstPolicy | None = Field(
        default=None,
        description="Recurring only: overrides the default DST rule (gap shift, repeated first).",
    )

    @field_validator("trigger_in")
    @classmethod
    def _positive_delay(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        if value is None:
            return None
        if info.data.get("type") == ReminderType.RECURRING:
            raise ValueError("not allowed for a recurring reminder; use cron_expression")
        if not timedelta(0) < value <= MAX_TRIGGER_IN:
            raise ValueError("must be more than 0 and at most 10 years")
        return value

    @field_validator("trigger_at")
    @classmethod
    def _trigger_matches_type(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        kind = info.data.get("type")
        relative = info.data.get("trigger_in") is not None
        if kind == ReminderType.ONE_TIME and value is not None and relative:
            raise ValueError("give trigger_at or trigger_in, not both")
        if kind == ReminderType.ONE_TIME and value is None and not relative and "trigger_in" not in info.data:
            # trigger_in was given but invalid: its own error says why; no second one here.
            return value
        if kind == ReminderType.ONE_TIME and value is None and not relative:
            raise ValueError(
                "required for a one_time reminder (an ISO 8601 time with a UTC offset), "
                "unless trigger_in is given"
            )
        if kind == ReminderType.RECURRING and value is not None:
            raise ValueError("not allowed for a recurring reminder; use cron_expression")
        return value

    @field_validator("cron_expression")
    @classmethod
    def _cron_matches_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == ReminderType.RECURRING and value is None:
            raise ValueError("required for a recurring reminder (5 fields, or 6 with seconds first)")
        if kind == ReminderType.ONE_TIME and value is not None:
            raise ValueError("not allowed for a one_time reminder; use trigger_at")
        return None if value is None else validate_cron(value)

    @field_validator("start_at", "until", "max_runs", "dst_policy")
    @classmethod
    def _only_for_series(cls, value: object, info: ValidationInfo) -> object:
        if value is not None and info.data.get("type") == ReminderType.ONE_TIME:
            raise ValueError("only for recurring reminders")
        if info.field_name == "until" and value is not None:
            start = info.data.get("start_at")
            if isinstance(start, datetime) and isinstance(value, datetime) and value <= start:
                raise ValueError("must be after start_at")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value


class Reminder(BaseModel):
    """A reminder as stored, with its schedule state."""

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

    @field_validator(*("trigger_at", "next_run_at", "last_triggered_at", "start_at", "until"))
    @classmethod
    def _infinite_as_null(cls, value: datetime | None) -> datetime | None:
        return finite_time(value)


# Reminder's fields in order; reminder_json writes them as Reminder.model_dump_json would.
_REMINDER_FIELDS = tuple(Reminder.model_fields)
_NULLABLE_TIMES = ("trigger_at", "next_run_at", "last_triggered_at", "start_at", "until")


def finite_time(value: datetime | None) -> datetime | None:
    """None for PostgreSQL's -infinity/+infinity (asyncpg reads them as naive datetimes).

    Only rows written before the API refused such times hold them; the poller quarantines those
    that come due, and a read shows the time as null rather than as a time without an offset.
    """
    return None if value is not None and value.tzinfo is None else value


def reminder_json(data: dict[str, Any]) -> bytes:
    """``Reminder.model_validate(data).model_dump_json()`` for data read from the database, without
    the model: the same keys in the same order, and the same JSON for each value (UUIDs as strings,
    aware datetimes in ISO 8601 with ``Z`` for UTC, ``dst_policy`` as an object).

    The values are what the database returns for the reminders columns, so they need no
    validation; tests/unit/test_schemas.py checks the bytes equal pydantic's.
    """
    values = {name: data[name] for name in _REMINDER_FIELDS}
    for name in _NULLABLE_TIMES:
        values[name] = finite_time(values[name])
    return orjson.dumps(values, default=_uuid_text, option=orjson.OPT_UTC_Z)


def _uuid_text(value: object) -> str:
    # asyncpg's UUID subclass is not one orjson serializes natively; its text is the canonical form.
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ReminderPage(BaseModel):
    """One page of reminders and the total across all pages."""

    items: list[Reminder]
    total: int
    page: int
    limit: int


class ReminderUpdate(BaseModel):
    """A change to a reminder: pause or resume, and/or new schedule, payload or policies.

    Only the fields given change; ``next_run_at`` is recomputed in the same transaction.
    """

    model_config = ConfigDict(extra="forbid")

    # Two ReminderStatus values, spelled as a Literal so that a wrong one is refused naming only
    # these (tests/unit/test_vocabulary.py holds them to the enum).
    status: Literal["paused", "active"] | None = None
    trigger_at: Instant | None = Field(default=None, description="One-time reminders only.")
    cron_expression: str | None = Field(default=None, max_length=200, description="Recurring only.")
    timezone: str | None = Field(default=None, min_length=1, max_length=64, description=ZONE_DESCRIPTION)
    payload: Payload | None = None
    misfire_policy: MisfirePolicy | None = None
    misfire_grace_seconds: JsonInt | None = Field(default=None, ge=0, le=MAX_GRACE_SECONDS)
    ack_required: JsonBool | None = None
    until: Instant | None = Field(default=None, description="Recurring only.")
    max_runs: JsonInt | None = Field(default=None, ge=1, le=1_000_000_000, description="Recurring only.")
    dst_policy: DstPolicy | None = Field(
        default=None, description="Recurring only; only the keys given (gap, repeated) change."
    )

    @field_validator("cron_expression")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value


class Ack(BaseModel):
    """The assistant's confirmation of one event."""

    model_config = ConfigDict(extra="forbid")

    event_id: UUID
    # The title names the enum in generated clients; "Result" made it AckResult, the response's name.
    result: Literal["ok", "error"] = Field(default="ok", title="Outcome")
    action: Literal["continue", "complete"] = "continue"
    details: dict[str, Any] | None = None

    @field_validator("details")
    @classmethod
    def _storable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else storable_details(value)


class AckResult(BaseModel):
    """The delivery's state after the ack, and the reminder."""

    event_id: UUID
    state: Literal[DeliveryState.ACKED]
    reminder: Reminder


class AuditEntry(BaseModel):
    """One audited action on a reminder."""

    at: datetime
    actor: str
    action: str
    details: dict[str, Any]


class DeliveryEntry(BaseModel):
    """One occurrence's delivery: its event id, attempts and state."""

    event_id: UUID
    scheduled_for: datetime
    attempt: int
    state: DeliveryState
    late: bool
    created_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    next_attempt_at: datetime | None
    dead_lettered_at: datetime | None


class AuditPage(BaseModel):
    """A page of audit entries and their total."""

    items: list[AuditEntry]
    total: int


class DeliveryPage(BaseModel):
    """A page of deliveries and their total."""

    items: list[DeliveryEntry]
    total: int


class History(BaseModel):
    """What happened to a reminder: its audit trail and its deliveries, newest first."""

    reminder_id: UUID
    audit: AuditPage
    deliveries: DeliveryPage
    page: int
    limit: int


class ErrorDetail(BaseModel):
    """Every error answer: ``{"detail": "..."}`` (validation errors list the fields instead)."""

    detail: str


class PreviewFire(BaseModel):
    """One upcoming fire, in UTC and in the schedule's own time zone."""

    utc: datetime
    local: datetime
    dst_transition_day: bool = Field(
        description="The local day of this fire has a clock change (DST): check it is what you want."
    )


class Preview(BaseModel):
    """The next fires of a schedule."""

    cron_expression: str
    timezone: str
    dst_policy: DstPolicy
    fires: list[PreviewFire]


class Snooze(BaseModel):
    """Move the next occurrence: by a duration (``for``) or to a time (``until``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    for_: Duration | None = Field(
        default=None, alias="for", description="ISO 8601 duration (PT10M) or seconds", examples=["PT10M"]
    )
    until: Instant | None = Field(default=None, validate_default=True)

    @field_validator("until")
    @classmethod
    def _exactly_one(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if (value is None) == (info.data.get("for_") is None) and "for_" in info.data:
            raise ValueError("give either 'for' or 'until'")
        return value

    @field_validator("for_")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(0) < value <= MAX_TRIGGER_IN:
            raise ValueError("must be more than 0 and at most 10 years")
        return value
