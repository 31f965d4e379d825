"""The event pushed to Redis (core/events.py, docs/design.md and docs/events.md): pure functions, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
import pytest

from core.events import EVENT_NAMESPACE, EVENT_TYPE, Occurrence, encode_event, event_id_for, format_time

REMINDER = UUID("11111111-1111-4111-8111-111111111111")
OTHER_REMINDER = UUID("22222222-2222-4222-8222-222222222222")
ASSISTANT = UUID("33333333-3333-4333-8333-333333333333")
EVENT = UUID("44444444-4444-4444-8444-444444444444")


# --- event_id_for --------------------------------------------------------------------------


def test_event_id_is_deterministic() -> None:
    moment = datetime(2025, 4, 6, 12, tzinfo=UTC)
    assert event_id_for(REMINDER, moment) == event_id_for(REMINDER, moment)
    assert event_id_for(REMINDER, moment) == event_id_for(REMINDER, datetime(2025, 4, 6, 12, tzinfo=UTC))


def test_event_id_is_a_uuid5() -> None:
    assert event_id_for(REMINDER, datetime(2025, 4, 6, 12, tzinfo=UTC)).version == 5


@pytest.mark.parametrize(
    "moment",
    [datetime(2025, 4, 6, 12, tzinfo=UTC), datetime(2025, 10, 26, 2, 30, 15, 123456, tzinfo=UTC)],
)
def test_event_id_is_exactly_the_stdlib_uuid5_of_reminder_and_time(moment: datetime) -> None:
    # Ids already stored in deliveries must keep matching: the fast spelling changes nothing.
    expected = uuid.uuid5(EVENT_NAMESPACE, f"{REMINDER}/{moment.isoformat()}")
    event_id = event_id_for(REMINDER, moment)
    assert event_id == expected
    # Built as asyncpg's C UUID: it must spell, hash and compare as the stdlib one does.
    assert isinstance(event_id, uuid.UUID)
    assert (str(event_id), event_id.bytes, hash(event_id)) == (str(expected), expected.bytes, hash(expected))
    assert event_id in {expected}


@pytest.mark.parametrize(
    "same_instant",
    [
        datetime(2025, 4, 6, 14, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2025, 4, 6, 8, tzinfo=ZoneInfo("America/New_York")),
        datetime(2025, 4, 6, 17, 30, tzinfo=ZoneInfo("Asia/Kolkata")),
        datetime(2025, 4, 6, 9, 15, tzinfo=timezone(timedelta(hours=-2, minutes=-45))),
    ],
)
def test_event_id_is_the_same_for_the_same_instant_in_any_zone(same_instant: datetime) -> None:
    in_utc = datetime(2025, 4, 6, 12, tzinfo=UTC)
    assert same_instant == in_utc
    assert event_id_for(REMINDER, same_instant) == event_id_for(REMINDER, in_utc)


def test_event_id_differs_for_different_times() -> None:
    base = datetime(2025, 4, 6, 12, tzinfo=UTC)
    ids = {
        event_id_for(REMINDER, base + delta)
        for delta in (
            timedelta(0),
            timedelta(microseconds=1),
            timedelta(milliseconds=1),
            timedelta(seconds=1),
            timedelta(hours=1),
            timedelta(days=1),
        )
    }
    assert len(ids) == 6


def test_event_id_differs_for_different_reminders() -> None:
    moment = datetime(2025, 4, 6, 12, tzinfo=UTC)
    assert event_id_for(REMINDER, moment) != event_id_for(OTHER_REMINDER, moment)


# --- format_time -----------------------------------------------------------------------------


def test_format_time_whole_seconds_has_no_fraction() -> None:
    assert format_time(datetime(2025, 4, 6, 12, 0, 0, tzinfo=UTC)) == "2025-04-06T12:00:00Z"


@pytest.mark.parametrize(
    ("microsecond", "fraction"),
    [(123_456, ".123"), (1_000, ".001"), (999_999, ".999"), (500_000, ".500")],
)
def test_format_time_has_milliseconds_when_non_zero(microsecond: int, fraction: str) -> None:
    moment = datetime(2025, 4, 6, 12, 0, 5, microsecond, tzinfo=UTC)
    assert format_time(moment) == f"2025-04-06T12:00:05{fraction}Z"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2025, 4, 6, 14, 0, tzinfo=ZoneInfo("Europe/Berlin")), "2025-04-06T12:00:00Z"),
        (datetime(2025, 1, 6, 14, 0, tzinfo=ZoneInfo("Europe/Berlin")), "2025-01-06T13:00:00Z"),
        (
            datetime(2025, 4, 6, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2025-04-05T20:00:00Z",
        ),
        (datetime(2025, 12, 31, 20, 0, tzinfo=ZoneInfo("America/New_York")), "2026-01-01T01:00:00Z"),
    ],
)
def test_format_time_converts_other_offsets_to_utc(moment: datetime, expected: str) -> None:
    assert format_time(moment) == expected


def test_format_time_is_iso_8601_parseable_back_to_the_same_instant() -> None:
    moment = datetime(2025, 4, 6, 12, 34, 56, 789_000, tzinfo=UTC)
    assert datetime.fromisoformat(format_time(moment).replace("Z", "+00:00")) == moment


# --- encode_event ------------------------------------------------------------------------------


def _occurrence(**overrides: Any) -> Occurrence:
    fields: dict[str, Any] = {
        "event_id": EVENT,
        "attempt": 1,
        "reminder_id": REMINDER,
        "assistant_id": ASSISTANT,
        "user_id": 123,
        "reminder_type": "one_time",
        "payload_json": '{"text":"Meeting","priority":"normal"}',
        "scheduled_for": datetime(2025, 4, 6, 12, tzinfo=UTC),
        "triggered_at": datetime(2025, 4, 6, 12, tzinfo=UTC),
        "created_at": datetime(2025, 4, 5, 10, tzinfo=UTC),
        "ack_required": True,
    }
    fields.update(overrides)
    return Occurrence(**fields)


def test_encode_event_has_the_design_structure_plus_scheduled_for() -> None:
    decoded = orjson.loads(encode_event(_occurrence()))
    assert decoded == {
        "event_id": str(EVENT),
        "attempt": 1,
        "assistant_id": str(ASSISTANT),
        "event": "reminder_triggered",
        "payload": {
            "reminder_id": str(REMINDER),
            "user_id": 123,
            "reminder_type": "one_time",
            "payload": {"text": "Meeting", "priority": "normal"},
            "scheduled_for": "2025-04-06T12:00:00Z",
            "triggered_at": "2025-04-06T12:00:00Z",
            "created_at": "2025-04-05T10:00:00Z",
        },
    }


def test_encode_event_key_order() -> None:
    decoded = orjson.loads(encode_event(_occurrence()))
    assert list(decoded) == ["event_id", "attempt", "assistant_id", "event", "payload"]
    assert list(decoded["payload"]) == [
        "reminder_id",
        "user_id",
        "reminder_type",
        "payload",
        "scheduled_for",
        "triggered_at",
        "created_at",
    ]


def test_encode_event_embeds_the_payload_as_an_object_not_a_string() -> None:
    raw = encode_event(_occurrence(payload_json='{"nested":{"list":[1,2.5,null,true]},"s":"\\u00e9"}'))
    inner = orjson.loads(raw)["payload"]["payload"]
    assert isinstance(inner, dict)
    assert inner == {"nested": {"list": [1, 2.5, None, True]}, "s": "é"}
    assert b'"payload":{"nested"' in raw


def test_encode_event_is_compact_json_bytes() -> None:
    raw = encode_event(_occurrence())
    assert isinstance(raw, bytes)
    assert b"\n" not in raw
    assert b'": ' not in raw
    assert raw.startswith(b'{"event_id":"44444444-4444-4444-8444-444444444444","attempt":1,')


def test_encode_event_event_type_constant() -> None:
    assert EVENT_TYPE == "reminder_triggered"


def test_encode_event_carries_the_attempt_and_type() -> None:
    decoded = orjson.loads(encode_event(_occurrence(attempt=4, reminder_type="recurring")))
    assert decoded["attempt"] == 4
    assert decoded["payload"]["reminder_type"] == "recurring"


def test_encode_event_times_are_utc_with_z() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    decoded = orjson.loads(
        encode_event(
            _occurrence(
                triggered_at=datetime(2025, 4, 6, 14, 0, 0, 250_000, tzinfo=berlin),
                created_at=datetime(2025, 1, 5, 11, tzinfo=berlin),
            )
        )
    )
    assert decoded["payload"]["triggered_at"] == "2025-04-06T12:00:00.250Z"
    assert decoded["payload"]["created_at"] == "2025-01-05T10:00:00Z"


def test_encode_event_is_deterministic_for_the_same_occurrence() -> None:
    assert encode_event(_occurrence()) == encode_event(_occurrence())


def test_encode_event_large_user_id_is_exact() -> None:
    big = 2**63 - 1
    assert orjson.loads(encode_event(_occurrence(user_id=big)))["payload"]["user_id"] == big
