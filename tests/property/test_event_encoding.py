"""encode_event spells its JSON by hand: it must give exactly the bytes orjson gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from core.events import EVENT_TYPE, Occurrence, encode_event, format_time
from core.states import REMINDER_TYPES


def reference(occurrence: Occurrence) -> bytes:
    """The event as a dict, serialised by orjson: the encoding encode_event must match."""
    payload: dict[str, object] = {
        "reminder_id": str(occurrence.reminder_id),
        "user_id": occurrence.user_id,
        "reminder_type": occurrence.reminder_type,
        "payload": orjson.Fragment(occurrence.payload_json),
        "scheduled_for": format_time(occurrence.scheduled_for),
        "triggered_at": format_time(occurrence.triggered_at),
        "created_at": format_time(occurrence.created_at),
    }
    if occurrence.late:
        payload["late"] = True
        lateness = (occurrence.triggered_at - occurrence.scheduled_for).total_seconds()
        payload["lateness_seconds"] = round(lateness, 3)
    event = {
        "event_id": str(occurrence.event_id),
        "attempt": occurrence.attempt,
        "assistant_id": str(occurrence.assistant_id),
        "event": EVENT_TYPE,
        "payload": payload,
    }
    return orjson.dumps(event)


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
def test_encode_event_gives_the_bytes_orjson_gives(
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
    assert encoded == reference(occurrence)
    assert orjson.loads(encoded)["payload"]["payload"] == orjson.loads(occurrence.payload_json)
