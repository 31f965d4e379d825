"""Every endpoint as a ``Call``: the request to make and how to read its answer, with no I/O.

The async and the sync client both run these, so paths, bodies and parsing exist once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel

from client.errors import error_for
from client.models import (
    AckAction,
    AckOutcome,
    AckResult,
    DstGap,
    DstPolicy,
    DstRepeated,
    History,
    MisfirePolicy,
    Preview,
    Reminder,
    ReminderPage,
    ReminderStatus,
    ReminderType,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Payload = Mapping[str, Any] | str
"""A reminder's payload: a mapping (sent as compact JSON) or a JSON object's text, sent as is."""
Duration = timedelta | float | str
"""A delay: a timedelta, seconds, or an ISO 8601 duration such as ``PT2H``."""
Id = UUID | str


class _Unset(Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET
"""An ``update`` field left alone (None is a value there: it clears ``until`` or ``max_runs``)."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and the parser of its successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, str | int] | None = None
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def build(self, http: httpx.Client | httpx.AsyncClient, auth: Mapping[str, str]) -> httpx.Request:
        """The request on ``http`` (its base URL), with ``auth`` headers added."""
        return http.build_request(
            self.method, self.path, params=self.params, json=self.json, headers={**auth, **self.headers}
        )

    def finish(self, response: httpx.Response) -> T:
        """The parsed answer, or the typed ``ApiError`` for a non-2xx one."""
        if not response.is_success:
            raise error_for(response)
        return self.parse(response)


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: model.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    del response


def auth_headers(api_key: str | None = None, token: str | None = None) -> dict[str, str]:
    """``X-API-Key`` for an API key, ``Authorization: Bearer`` for a JWT; at most one of them."""
    if api_key is not None and token is not None:
        raise ValueError("give api_key or token, not both")
    if api_key is not None:
        return {"X-API-Key": api_key}
    if token is not None:
        return {"Authorization": f"Bearer {token}"}
    return {}


def _id(value: Id) -> str:
    # Checked here so a stray string can never change the path (``../``) it is put in.
    return str(value if isinstance(value, UUID) else UUID(value))


def _time(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} has no time zone; the API needs an aware datetime")
    return value.isoformat()


def _duration(value: Duration) -> float | str:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _payload(value: Payload) -> str:
    return value if isinstance(value, str) else json.dumps(dict(value), separators=(",", ":"))


def _given(**fields: Any) -> dict[str, Any]:
    """Only the fields given, so the API's own defaults apply to the rest."""
    return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True)
class OneTime:
    """A one-time reminder: at ``trigger_at`` (aware) or ``trigger_in`` from now; exactly one of them."""

    user_id: int
    assistant_id: Id
    payload: Payload
    trigger_at: datetime | None = None
    trigger_in: Duration | None = None
    timezone: str | None = None
    misfire_policy: MisfirePolicy | None = None
    misfire_grace_seconds: int | None = None
    ack_required: bool | None = None

    def body(self) -> dict[str, Any]:
        """The create request's JSON body."""
        if (self.trigger_at is None) == (self.trigger_in is None):
            raise ValueError("give exactly one of trigger_at and trigger_in")
        return {
            "user_id": self.user_id,
            "assistant_id": _id(self.assistant_id),
            "type": "one_time",
            "payload": _payload(self.payload),
            **_given(
                trigger_at=None if self.trigger_at is None else _time(self.trigger_at),
                trigger_in=None if self.trigger_in is None else _duration(self.trigger_in),
                timezone=self.timezone,
                misfire_policy=self.misfire_policy,
                misfire_grace_seconds=self.misfire_grace_seconds,
                ack_required=self.ack_required,
            ),
        }


@dataclass(frozen=True)
class Recurring:
    """A recurring reminder on ``cron_expression`` (5 fields, or 6 with seconds first) in ``timezone``."""

    user_id: int
    assistant_id: Id
    cron_expression: str
    payload: Payload
    timezone: str | None = None
    misfire_policy: MisfirePolicy | None = None
    misfire_grace_seconds: int | None = None
    ack_required: bool | None = None
    start_at: datetime | None = None
    until: datetime | None = None
    max_runs: int | None = None
    dst_policy: DstPolicy | None = None

    def body(self) -> dict[str, Any]:
        """The create request's JSON body."""
        return {
            "user_id": self.user_id,
            "assistant_id": _id(self.assistant_id),
            "type": "recurring",
            "cron_expression": self.cron_expression,
            "payload": _payload(self.payload),
            **_given(
                timezone=self.timezone,
                misfire_policy=self.misfire_policy,
                misfire_grace_seconds=self.misfire_grace_seconds,
                ack_required=self.ack_required,
                start_at=None if self.start_at is None else _time(self.start_at),
                until=None if self.until is None else _time(self.until),
                max_runs=self.max_runs,
                dst_policy=None if self.dst_policy is None else self.dst_policy.model_dump(),
            ),
        }


NewReminder = OneTime | Recurring


@dataclass(frozen=True)
class Changes:
    """A PATCH: only the fields not ``UNSET`` change; ``until``/``max_runs`` None clears them."""

    trigger_at: datetime | _Unset = UNSET
    cron_expression: str | _Unset = UNSET
    timezone: str | _Unset = UNSET
    payload: Payload | _Unset = UNSET
    misfire_policy: MisfirePolicy | _Unset = UNSET
    misfire_grace_seconds: int | _Unset = UNSET
    ack_required: bool | _Unset = UNSET
    until: datetime | _Unset | None = UNSET
    max_runs: int | _Unset | None = UNSET
    dst_gap: DstGap | _Unset = UNSET
    dst_repeated: DstRepeated | _Unset = UNSET

    def body(self) -> dict[str, Any]:
        """The PATCH body: only what changes."""
        body: dict[str, Any] = {}
        for name in ("cron_expression", "timezone", "misfire_policy", "misfire_grace_seconds",
                     "ack_required", "max_runs"):  # fmt: skip
            value = getattr(self, name)
            if value is not UNSET:
                body[name] = value
        if not isinstance(self.trigger_at, _Unset):
            body["trigger_at"] = _time(self.trigger_at)
        if not isinstance(self.until, _Unset):
            body["until"] = None if self.until is None else _time(self.until)
        if not isinstance(self.payload, _Unset):
            body["payload"] = _payload(self.payload)
        # The API changes only the DST keys given, so each is sent only when set.
        policy = {k: v for k, v in (("gap", self.dst_gap), ("repeated", self.dst_repeated)) if v is not UNSET}
        if policy:
            body["dst_policy"] = policy
        return body


def create(new: NewReminder, idempotency_key: str | None = None) -> Call[Reminder]:
    """POST /reminders/ (a retry with the same ``idempotency_key`` returns the first reminder)."""
    headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
    return Call("POST", "/reminders/", _model(Reminder), json=new.body(), headers=headers)


def get(reminder_id: Id) -> Call[Reminder]:
    """GET /reminders/{id}."""
    return Call("GET", f"/reminders/{_id(reminder_id)}", _model(Reminder))


def list_user(
    user_id: int,
    *,
    status: ReminderStatus | None = None,
    type: ReminderType | None = None,
    page: int = 1,
    limit: int = 20,
) -> Call[ReminderPage]:
    """GET /reminders/user/{user_id}, filtered by status and type."""
    params: dict[str, str | int] = {"page": page, "limit": limit, **_given(status=status, type=type)}
    return Call("GET", f"/reminders/user/{int(user_id)}", _model(ReminderPage), params=params)


def list_scheduled(*, page: int = 1, limit: int = 20) -> Call[ReminderPage]:
    """GET /reminders/scheduled: pending and active reminders, soonest first."""
    return Call("GET", "/reminders/scheduled", _model(ReminderPage), params={"page": page, "limit": limit})


def preview(
    cron: str,
    *,
    timezone: str = "UTC",
    count: int = 5,
    dst_gap: DstGap = "shift",
    dst_repeated: DstRepeated = "first",
) -> Call[Preview]:
    """GET /reminders/preview: a schedule's next fires, nothing stored."""
    params: dict[str, str | int] = {
        "cron": cron,
        "timezone": timezone,
        "count": count,
        "dst_gap": dst_gap,
        "dst_repeated": dst_repeated,
    }
    return Call("GET", "/reminders/preview", _model(Preview), params=params)


def next_fires(reminder_id: Id, *, count: int = 5) -> Call[Preview]:
    """GET /reminders/{id}/next."""
    return Call("GET", f"/reminders/{_id(reminder_id)}/next", _model(Preview), params={"count": count})


def set_status(reminder_id: Id, status: str) -> Call[Reminder]:
    """PATCH /reminders/{id} with ``{"status": ...}``: ``paused`` pauses, ``active`` resumes."""
    return Call("PATCH", f"/reminders/{_id(reminder_id)}", _model(Reminder), json={"status": status})


def update(reminder_id: Id, changes: Changes) -> Call[Reminder]:
    """PATCH /reminders/{id} with the changed fields."""
    return Call("PATCH", f"/reminders/{_id(reminder_id)}", _model(Reminder), json=changes.body())


def cancel(reminder_id: Id) -> Call[None]:
    """DELETE /reminders/{id}: cancelled, kept for audit."""
    return Call("DELETE", f"/reminders/{_id(reminder_id)}", _nothing)


def snooze(reminder_id: Id, *, for_: Duration | None = None, until: datetime | None = None) -> Call[Reminder]:
    """POST /reminders/{id}/snooze: the next occurrence moves by ``for_`` or to ``until``."""
    if for_ is not None and until is None:
        body: dict[str, Any] = {"for": _duration(for_)}
    elif until is not None and for_ is None:
        body = {"until": _time(until)}
    else:
        raise ValueError("give exactly one of for_ and until")
    return Call("POST", f"/reminders/{_id(reminder_id)}/snooze", _model(Reminder), json=body)


def skip(reminder_id: Id) -> Call[Reminder]:
    """POST /reminders/{id}/skip: a recurring reminder skips its next occurrence."""
    return Call("POST", f"/reminders/{_id(reminder_id)}/skip", _model(Reminder))


def ack(
    reminder_id: Id,
    event_id: Id,
    *,
    action: AckAction = "continue",
    result: AckOutcome = "ok",
    details: Mapping[str, Any] | None = None,
) -> Call[AckResult]:
    """POST /reminders/{id}/ack: confirm one event; ``action="complete"`` ends a recurring chain."""
    body: dict[str, Any] = {"event_id": _id(event_id), "result": result, "action": action}
    if details is not None:
        body["details"] = dict(details)
    return Call("POST", f"/reminders/{_id(reminder_id)}/ack", _model(AckResult), json=body)


def history(reminder_id: Id, *, page: int = 1, limit: int = 20) -> Call[History]:
    """GET /reminders/{id}/history: audit trail and deliveries, newest first."""
    params: dict[str, str | int] = {"page": page, "limit": limit}
    return Call("GET", f"/reminders/{_id(reminder_id)}/history", _model(History), params=params)
