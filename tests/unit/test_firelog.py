"""The fire log writes one JSON line per pushed event, with the ids an operator searches by."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import orjson

from core.events import Occurrence
from poller.firelog import FireLog

AT = datetime(2030, 1, 1, 10, tzinfo=UTC)


def occurrence(attempt: int = 1) -> Occurrence:
    return Occurrence(
        event_id=uuid.uuid4(),
        attempt=attempt,
        reminder_id=uuid.uuid4(),
        assistant_id=uuid.uuid4(),
        user_id=1,
        reminder_type="recurring",
        payload_json="{}",
        scheduled_for=AT,
        triggered_at=AT + timedelta(milliseconds=12),
        created_at=AT,
        ack_required=False,
    )


def test_one_json_line_per_event_with_its_ids() -> None:
    stream = io.StringIO()
    fire, retry = occurrence(), occurrence(attempt=2)
    FireLog(json_lines=True, level="INFO", stream=stream).write([fire, retry])
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["fire", "retry"]
    assert lines[0]["reminder_id"] == str(fire.reminder_id)
    assert lines[0]["event_id"] == str(fire.event_id)
    assert lines[0]["assistant_id"] == str(fire.assistant_id)
    assert lines[0]["scheduled_for"] == "2030-01-01T10:00:00Z"
    assert (lines[0]["lag_ms"], lines[0]["late"]) == (12.0, False)
    assert lines[1]["attempt"] == 2
    assert all(line["level"] == "info" and line["timestamp"].endswith("Z") for line in lines)


def test_nothing_below_the_configured_level() -> None:
    stream = io.StringIO()
    FireLog(json_lines=True, level="WARNING", stream=stream).write([occurrence()])
    assert stream.getvalue() == ""
