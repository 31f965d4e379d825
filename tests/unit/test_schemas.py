"""Validation of a new reminder's body (api/schemas.py ReminderCreate): pure, no I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID
from pydantic import ValidationError

from api.schemas import (
    BIGINT_MAX,
    MAX_GRACE_SECONDS,
    MAX_PAYLOAD_BYTES,
    Reminder,
    ReminderCreate,
    reminder_json,
    validate_cron,
)
from core.cron import InvalidSchedule
from core.cron import validate_cron as core_validate_cron

ASSISTANT = "33333333-3333-4333-8333-333333333333"


def one_time(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 123,
        "assistant_id": ASSISTANT,
        "type": "one_time",
        "trigger_at": "2025-04-06T12:00:00Z",
        "payload": '{"text": "Meeting", "priority": "normal"}',
    }
    body.update(overrides)
    return body


def recurring(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user_id": 123,
        "assistant_id": ASSISTANT,
        "type": "recurring",
        "cron_expression": "0 10 * * *",
        "timezone": "Europe/Berlin",
        "payload": '{"check_type": "daily_report"}',
    }
    body.update(overrides)
    return body


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def error_locs(body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as info:
        ReminderCreate.model_validate(body)
    return [tuple(error["loc"]) for error in info.value.errors()]


def error_for(body: dict[str, Any], field: str) -> dict[str, Any]:
    """The single error on ``field``; fails when the body is accepted or errs on another field."""
    with pytest.raises(ValidationError) as info:
        ReminderCreate.model_validate(body)
    errors = info.value.errors()
    assert [tuple(e["loc"]) for e in errors] == [(field,)], errors
    return dict(errors[0])


# --- accepted bodies ---------------------------------------------------------------------------


def test_valid_one_time() -> None:
    model = ReminderCreate.model_validate(one_time())
    assert model.type == "one_time"
    assert model.trigger_at == datetime(2025, 4, 6, 12, tzinfo=UTC)
    assert model.cron_expression is None
    assert model.timezone == "UTC"
    assert model.misfire_policy == "fire_once"
    assert model.assistant_id == UUID(ASSISTANT)
    assert model.user_id == 123


def test_valid_one_time_with_an_offset_keeps_the_instant() -> None:
    model = ReminderCreate.model_validate(one_time(trigger_at="2025-04-06T14:00:00+02:00"))
    assert model.trigger_at == datetime(2025, 4, 6, 12, tzinfo=UTC)
    assert model.trigger_at is not None and model.trigger_at.utcoffset() == timedelta(hours=2)


def test_valid_one_time_from_an_aware_datetime_object() -> None:
    moment = datetime(2025, 4, 6, 12, tzinfo=timezone(timedelta(hours=-5)))
    assert ReminderCreate.model_validate(one_time(trigger_at=moment)).trigger_at == moment


def test_valid_recurring() -> None:
    model = ReminderCreate.model_validate(recurring(misfire_policy="fire_all"))
    assert model.type == "recurring"
    assert model.trigger_at is None
    assert model.cron_expression == "0 10 * * *"
    assert model.timezone == "Europe/Berlin"
    assert model.misfire_policy == "fire_all"


@pytest.mark.parametrize(
    ("cron", "normalized"),
    [("*/2 * * * * *", "*/2 * * * * *"), ("  0  10 * * MON-FRI ", "0 10 * * MON-FRI"), ("@Daily", "@daily")],
)
def test_recurring_cron_is_normalized(cron: str, normalized: str) -> None:
    assert ReminderCreate.model_validate(recurring(cron_expression=cron)).cron_expression == normalized


@pytest.mark.parametrize("policy", ["skip", "fire_once", "fire_all"])
def test_misfire_policies(policy: str) -> None:
    assert ReminderCreate.model_validate(recurring(misfire_policy=policy)).misfire_policy == policy


def test_unknown_misfire_policy_is_refused() -> None:
    error_for(recurring(misfire_policy="fire_twice"), "misfire_policy")


# --- type and its time fields -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["once", "ONE_TIME", "", "cron", None])
def test_unknown_type_is_refused(kind: object) -> None:
    assert ("type",) in error_locs(one_time(type=kind))


def test_missing_type_is_refused() -> None:
    assert ("type",) in error_locs(without(one_time(), "type"))


def test_one_time_needs_trigger_at() -> None:
    error = error_for(without(one_time(), "trigger_at"), "trigger_at")
    assert "required for a one_time reminder" in error["msg"]


def test_one_time_with_null_trigger_at_is_refused() -> None:
    error_for(one_time(trigger_at=None), "trigger_at")


def test_one_time_refuses_a_cron_expression() -> None:
    error = error_for(one_time(cron_expression="0 10 * * *"), "cron_expression")
    assert "not allowed for a one_time reminder" in error["msg"]


def test_recurring_needs_a_cron_expression() -> None:
    error = error_for(without(recurring(), "cron_expression"), "cron_expression")
    assert "required for a recurring reminder" in error["msg"]


def test_recurring_refuses_trigger_at() -> None:
    error = error_for(recurring(trigger_at="2025-04-06T12:00:00Z"), "trigger_at")
    assert "not allowed for a recurring reminder" in error["msg"]


@pytest.mark.parametrize("naive", ["2025-04-06T12:00:00", "2025-04-06 12:00", datetime(2025, 4, 6, 12)])
def test_naive_trigger_at_is_refused(naive: object) -> None:
    error = error_for(one_time(trigger_at=naive), "trigger_at")
    assert error["type"] == "timezone_aware"


@pytest.mark.parametrize("garbage", ["tomorrow", "2025-13-01T00:00:00Z", 3.5e30])
def test_garbage_trigger_at_is_refused(garbage: object) -> None:
    assert ("trigger_at",) in error_locs(one_time(trigger_at=garbage))


@pytest.mark.parametrize("cron", ["* * * *", "60 * * * *", "0 0 30 2 *", "@every", "not a cron at all"])
def test_invalid_cron_is_refused_on_its_field(cron: str) -> None:
    error = error_for(recurring(cron_expression=cron), "cron_expression")
    assert error["type"] == "value_error"


def test_overlong_cron_is_refused() -> None:
    error_for(recurring(cron_expression="0 " * 150), "cron_expression")


# --- timezone ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham"])
def test_known_timezones_are_accepted(name: str) -> None:
    assert ReminderCreate.model_validate(recurring(timezone=name)).timezone == name


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/Berlinn", "", "x" * 65, "+02:00"])
def test_unknown_timezone_is_refused(name: str) -> None:
    error_for(recurring(timezone=name), "timezone")


def test_unknown_timezone_message_is_plain() -> None:
    error = error_for(recurring(timezone="Mars/Olympus_Mons"), "timezone")
    assert "unknown time zone" in error["msg"]


# --- payload ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ('{ "text" : "Meeting",  "priority": "normal" }', '{"text":"Meeting","priority":"normal"}'),
        ('{\n  "a": [1, 2, {"b": null}],\n  "c": true\n}', '{"a":[1,2,{"b":null}],"c":true}'),
        ("{}", "{}"),
        ('{"s": "\\u00e9\\u4e2d"}', '{"s":"é中"}'),
    ],
)
def test_payload_is_canonicalized_compactly(raw: str, canonical: str) -> None:
    model = ReminderCreate.model_validate(one_time(payload=raw))
    assert model.payload == canonical
    assert orjson.loads(model.payload) == orjson.loads(raw)


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "42", "null", "true"])
def test_payload_must_be_an_object(raw: str) -> None:
    error = error_for(one_time(payload=raw), "payload")
    assert "JSON object" in error["msg"]


@pytest.mark.parametrize("raw", ["", "{", "{'a': 1}", '{"a": 1,}', "not json", '{"a": NaN}'])
def test_payload_must_be_valid_json(raw: str) -> None:
    error_for(one_time(payload=raw), "payload")


def test_payload_may_be_an_object_stored_as_its_text() -> None:
    # Issue 17 (a newcomer's stumble): an object was a 422; now it is taken as its JSON text.
    model = ReminderCreate.model_validate(one_time(payload={"note": "Standup", "n": [1, {"x": None}]}))
    assert model.payload == '{"note":"Standup","n":[1,{"x":null}]}'


@pytest.mark.parametrize(
    "raw",
    [
        '{"big": 31415926535897932384626433832795}',
        '{"long": 2.718281828459045235360287471352}',
        '{"e": 6.02E23, "neg": -0.000000000000000000000000000001}',
    ],
)
def test_payload_numbers_keep_their_text(raw: str) -> None:
    # Issue 17 defect 9: big integers became floats and long decimals lost digits.
    model = ReminderCreate.model_validate(one_time(payload=raw))
    assert model.payload == raw.replace(": ", ":").replace(", ", ",")


@pytest.mark.parametrize("raw", ['{"a": 1, "a": 2}', '{"o": {"k": [], "k": {}}}'])
def test_payload_with_a_duplicate_key_is_refused_naming_it(raw: str) -> None:
    error = error_for(one_time(payload=raw), "payload")
    assert "duplicate key" in error["msg"]


def test_payload_nested_beyond_the_limit_is_refused() -> None:
    raw = '{"deep": ' + "[" * 70 + "]" * 70 + "}"
    error = error_for(one_time(payload=raw), "payload")
    assert "nested deeper than 64" in error["msg"]


def test_payload_is_required() -> None:
    assert ("payload",) in error_locs(without(one_time(), "payload"))


def _payload_of_bytes(size: int, char: str) -> str:
    """A JSON object text of exactly ``size`` UTF-8 bytes built from ``char`` (plus ASCII padding)."""
    frame = 8  # {"t":""}
    width = len(char.encode())
    count, pad = divmod(size - frame, width)
    text = '{"t":"' + char * count + "a" * pad + '"}'
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize("char", ["a", "é", "中", "😀"])
def test_payload_of_exactly_64_kib_is_accepted(char: str) -> None:
    raw = _payload_of_bytes(MAX_PAYLOAD_BYTES, char)
    assert len(ReminderCreate.model_validate(one_time(payload=raw)).payload.encode()) == MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("char", ["a", "é", "中", "😀"])
def test_payload_over_64_kib_is_refused(char: str) -> None:
    error_for(one_time(payload=_payload_of_bytes(MAX_PAYLOAD_BYTES + 1, char)), "payload")


def test_payload_limit_counts_bytes_not_characters() -> None:
    # 40 000 two-byte characters: well under 64 Ki characters, but about 80 000 bytes.
    raw = '{"t":"' + "é" * 40_000 + '"}'
    assert len(raw) < MAX_PAYLOAD_BYTES < len(raw.encode())
    error = error_for(one_time(payload=raw), "payload")
    assert "bytes" in error["msg"]


# --- unknown and server-owned fields -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("created_by_assistant_id", "44444444-4444-4444-8444-444444444444"),
        ("status", "completed"),
        ("id", "55555555-5555-4555-8555-555555555555"),
        ("next_run_at", "2025-04-06T12:00:00Z"),
        ("created_at", "2025-04-06T12:00:00Z"),
        ("surprise", 1),
    ],
)
def test_unknown_fields_are_refused(field: str, value: object) -> None:
    error = error_for(one_time(**{field: value}), field)
    assert error["type"] == "extra_forbidden"


# --- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", [0, 1, 123, BIGINT_MAX])
def test_user_id_in_bounds(user_id: int) -> None:
    assert ReminderCreate.model_validate(one_time(user_id=user_id)).user_id == user_id


@pytest.mark.parametrize("user_id", [-1, BIGINT_MAX + 1, 2**64, "abc", 1.5, None])
def test_user_id_out_of_bounds_or_wrong_type(user_id: object) -> None:
    error_for(one_time(user_id=user_id), "user_id")


def test_bigint_max_is_postgres_bigint_max() -> None:
    assert BIGINT_MAX == 2**63 - 1 == 9_223_372_036_854_775_807


@pytest.mark.parametrize("assistant_id", ["not-a-uuid", "", 5, None])
def test_assistant_id_must_be_a_uuid(assistant_id: object) -> None:
    error_for(one_time(assistant_id=assistant_id), "assistant_id")


def test_several_errors_are_all_reported() -> None:
    locs = error_locs(one_time(user_id=-5, timezone="Nowhere/Land", payload="[]", status="x"))
    assert set(locs) == {("user_id",), ("timezone",), ("payload",), ("status",)}


def _reminder_row(rng: random.Random) -> dict[str, Any]:
    """What api/routes/reminders.py makes of a database row, with the types asyncpg returns."""

    def moment() -> datetime | None:
        if rng.random() < 0.2:
            return None
        value = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randint(0, 10**9), microseconds=rng.choice([0, 1, 500_000, rng.randint(0, 999_999)])
        )
        if rng.random() < 0.1:  # never from asyncpg (always UTC), but the JSON must still agree
            value = value.astimezone(timezone(timedelta(hours=rng.randint(-12, 12))))
        return value

    def uid() -> UUID:
        return PgUUID(str(uuid4()))  # asyncpg's own UUID subclass

    return {
        "id": uid(),
        "user_id": rng.choice([0, BIGINT_MAX, rng.randint(0, BIGINT_MAX)]),
        "assistant_id": uid(),
        "created_by_assistant_id": uid(),
        "type": rng.choice(["one_time", "recurring"]),
        "trigger_at": moment(),
        "cron_expression": rng.choice([None, "*/5 * * * *"]),
        "timezone": rng.choice(["UTC", "Europe/Berlin"]),
        "payload": rng.choice(['{"a":1}', '{"t":"\u00e9\\n\\u0000 \u2028 \U0001f600"}', '{"x":"\\"/\\\\"}']),
        "status": rng.choice(["pending", "active", "paused"]),
        "next_run_at": moment(),
        "last_triggered_at": moment(),
        "misfire_policy": rng.choice(["skip", "fire_once", "fire_all"]),
        "misfire_grace_seconds": rng.randint(0, MAX_GRACE_SECONDS),
        "ack_required": rng.random() < 0.5,
        "start_at": moment(),
        "until": moment(),
        "max_runs": rng.choice([None, 1, 10**9]),
        "runs_count": rng.randint(0, 10**6),
        "dst_policy": {"gap": rng.choice(["shift", "skip"]), "repeated": rng.choice(["first", "both"])},
        "created_at": moment() or datetime.now(UTC),
        "updated_at": moment() or datetime.now(UTC),
    }


def test_reminder_json_is_the_models_json() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        row = _reminder_row(rng)
        assert reminder_json(row) == Reminder.model_validate(row).model_dump_json().encode()


def test_cron_validation_is_cached_without_changing_answers() -> None:
    assert validate_cron("*/5   *  * * *") == core_validate_cron("*/5   *  * * *") == "*/5 * * * *"
    assert validate_cron("*/5   *  * * *") == "*/5 * * * *"  # from the cache
    for bad in ("61 * * * *", "", "* * *"):
        with pytest.raises(InvalidSchedule):
            validate_cron(bad)
        with pytest.raises(InvalidSchedule):
            validate_cron(bad)  # errors are not cached: raised again
