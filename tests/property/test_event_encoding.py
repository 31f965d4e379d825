"""encode_event, for any occurrence: compact JSON that gives back every field, in the documented order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from core.events import EVENT_TYPE, Occurrence, encode_event, format_time
from core.states import REMINDER_TYPES

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


@given(
    event_id=st.uuids(),
    reminder_id=st.uuids(),
    assistant_id=st.uuids(),
    attempt=st.integers(1, 1000),
    user_id=st.integers(-(2**63), 2**63 - 1),
    reminder_type=st.sampled_from(sorted(REMINDER_TYPES)),
    payload=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    scheduled_for=moments,
    delay=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    created_at=moments,
    late=st.booleans(),
)
def test_an_event_gives_back_every_field_of_its_occurrence(
    event_id: Any,
    reminder_id: Any,
    assistant_id: Any,
    attempt: int,
    user_id: int,
    reminder_type: str,
    payload: dict[str, Any],
    scheduled_for: datetime,
    delay: timedelta,
    created_at: datetime,
    late: bool,
) -> None:
    occurrence = Occurrence(
        event_id=event_id,
        attempt=attempt,
        reminder_id=reminder_id,
        assistant_id=assistant_id,
        user_id=user_id,
        reminder_type=reminder_type,
        # As the API stores it: canonical JSON text.
        payload_json=orjson.dumps(payload).decode(),
        scheduled_for=scheduled_for,
        triggered_at=scheduled_for + delay,
        created_at=created_at,
        ack_required=True,
        late=late,
    )
    encoded = encode_event(occurrence)
    event = orjson.loads(encoded)
    assert encoded == orjson.dumps(event)  # compact: no byte but the JSON's own
    assert list(event) == ["event_id", "attempt", "assistant_id", "event", "payload"]
    assert (event["event_id"], event["attempt"], event["assistant_id"], event["event"]) == (
        str(event_id),
        attempt,
        str(assistant_id),
        EVENT_TYPE,
    )
    inner = event["payload"]
    keys = [
        "reminder_id",
        "user_id",
        "reminder_type",
        "payload",
        "scheduled_for",
        "triggered_at",
        "created_at",
    ]
    assert list(inner) == keys + (["late", "lateness_seconds"] if late else [])
    assert (inner["reminder_id"], inner["user_id"], inner["reminder_type"]) == (
        str(reminder_id),
        user_id,
        reminder_type,
    )
    assert inner["payload"] == payload
    times = (inner["scheduled_for"], inner["triggered_at"], inner["created_at"])
    assert times == (format_time(scheduled_for), format_time(scheduled_for + delay), format_time(created_at))
    if late:
        assert inner["late"] is True and inner["lateness_seconds"] == round(delay.total_seconds(), 3)
