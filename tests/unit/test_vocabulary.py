"""One vocabulary: the enums of ``core.states`` are the values everywhere else spells.

The API's models use the enums themselves; the few Literals left (two statuses a PATCH takes, the
ack's words) and the client's standalone copies are held to them here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, get_args

import pytest
from pydantic import BaseModel

import api.schemas as server
import client.models as client
from api.event_schema import ReminderEventPayload
from core.states import (
    DELIVERY_STATES,
    DST_GAP_POLICIES,
    DST_REPEATED_POLICIES,
    ENDED_STATUSES,
    LIVE_STATUSES,
    MISFIRE_POLICIES,
    REMINDER_STATUSES,
    REMINDER_TYPES,
    SCHEDULED_STATUSES,
    DeliveryState,
    DstGap,
    DstRepeated,
    MisfirePolicy,
    ReminderStatus,
    ReminderType,
)


def _values(annotation: Any) -> set[str]:
    """The values a Literal (or ``Literal | None``) admits."""
    args = set(get_args(annotation)) - {type(None)}
    if len(args) == 1 and get_args(next(iter(args))):
        args = set(get_args(next(iter(args))))
    return {str(a) for a in args}


def _field(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].annotation


@pytest.mark.parametrize(
    ("values", "enum"),
    [
        (REMINDER_TYPES, ReminderType),
        (REMINDER_STATUSES, ReminderStatus),
        (MISFIRE_POLICIES, MisfirePolicy),
        (DST_GAP_POLICIES, DstGap),
        (DST_REPEATED_POLICIES, DstRepeated),
        (DELIVERY_STATES, DeliveryState),
    ],
)
def test_the_value_tuples_are_the_enums_values_as_plain_str(
    values: tuple[str, ...], enum: type[StrEnum]
) -> None:
    assert values == tuple(m.value for m in enum)
    assert all(type(v) is str for v in values)  # orjson takes them as dict keys


def test_a_member_is_its_value_wherever_it_is_written() -> None:
    member = ReminderStatus.QUARANTINED
    assert member == "quarantined" and str(member) == "quarantined" and f"{member}" == "quarantined"
    assert server.Reminder.model_fields["status"].annotation is ReminderStatus


def test_the_status_groups_partition_the_statuses() -> None:
    assert set(SCHEDULED_STATUSES) < set(LIVE_STATUSES)
    assert set(LIVE_STATUSES) | set(ENDED_STATUSES) == set(ReminderStatus)
    assert not set(LIVE_STATUSES) & set(ENDED_STATUSES)


@pytest.mark.parametrize(
    ("model", "name", "enum"),
    [
        (server.Reminder, "type", ReminderType),
        (server.Reminder, "status", ReminderStatus),
        (server.Reminder, "misfire_policy", MisfirePolicy),
        (server.ReminderCreate, "type", ReminderType),
        (server.ReminderCreate, "misfire_policy", MisfirePolicy),
        (server.DstPolicy, "gap", DstGap),
        (server.DstPolicy, "repeated", DstRepeated),
        (server.DeliveryEntry, "state", DeliveryState),
        (ReminderEventPayload, "reminder_type", ReminderType),
    ],
)
def test_the_api_models_use_the_enums(model: type[BaseModel], name: str, enum: type[StrEnum]) -> None:
    assert _field(model, name) is enum


def test_the_api_literals_are_enum_values() -> None:
    assert _values(_field(server.ReminderUpdate, "status")) == {ReminderStatus.PAUSED, ReminderStatus.ACTIVE}
    assert _values(_field(server.AckResult, "state")) == {DeliveryState.ACKED}


@pytest.mark.parametrize(
    ("theirs", "enum"),
    [
        (client.ReminderType, ReminderType),
        (client.MisfirePolicy, MisfirePolicy),
        (client.DstGap, DstGap),
        (client.DstRepeated, DstRepeated),
        (_field(client.DeliveryEntry, "state"), DeliveryState),
    ],
)
def test_the_clients_literals_are_the_enums_values(theirs: Any, enum: type[StrEnum]) -> None:
    assert _values(theirs) == set(enum)


def test_the_clients_statuses_are_the_servers() -> None:
    # The client once lacked "quarantined": it failed to read such a reminder, and a page holding one.
    assert _values(client.ReminderStatus) == set(ReminderStatus)


def test_the_clients_ack_words_are_the_servers() -> None:
    assert _values(client.AckAction) == _values(_field(server.Ack, "action"))
    assert _values(client.AckOutcome) == _values(_field(server.Ack, "result"))
    assert _values(_field(client.AckResult, "state")) == {DeliveryState.ACKED}
