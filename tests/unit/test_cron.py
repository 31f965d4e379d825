"""Cron validation, time zones and the next fire (core/cron.py): pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from core.cron import InvalidSchedule, _next_fire_utc, has_seconds, next_fire, validate_cron, zone


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --- validate_cron: accepted -------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "0 10 * * *",
        "*/5 * * * *",
        "0 9-17 * * 1-5",
        "0,15,30,45 * * * *",
        "0 0 1,15 * *",
        "10-50/10 0-23/6 * * *",
        "0 10 * * MON",
        "0 10 * * MON-FRI",
        "0 10 * * sat,sun",
        "0 0 1 JAN *",
        "0 0 1 jan-mar *",
        "0 0 29 2 *",
        "0 0 * * 0",
        "0 0 * * 7",
        "59 23 31 12 *",
    ],
)
def test_five_field_expressions_are_accepted_unchanged(expression: str) -> None:
    assert validate_cron(expression) == expression


@pytest.mark.parametrize(
    "expression",
    ["*/2 * * * * *", "0 * * * * *", "30 0 10 * * *", "0,30 */5 9-17 * * MON-FRI", "59 59 23 31 12 *"],
)
def test_six_field_expressions_with_seconds_first_are_accepted(expression: str) -> None:
    assert validate_cron(expression) == expression
    assert has_seconds(expression)


def test_seconds_field_is_first_so_seconds_out_of_range_in_last_position_is_fine() -> None:
    # With seconds first, the last field is the weekday: 6 is a valid weekday and 59 a valid second.
    assert validate_cron("59 * * * * 6") == "59 * * * * 6"
    # 59 in the last (weekday) position is out of range when seconds come first.
    with pytest.raises(InvalidSchedule):
        validate_cron("0 * * * * 59")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  0   10 * *  * ", "0 10 * * *"),
        ("\t*/2 * * * * *\n", "*/2 * * * * *"),
    ],
)
def test_whitespace_is_normalized(raw: str, normalized: str) -> None:
    assert validate_cron(raw) == normalized


@pytest.mark.parametrize(
    "macro", ["@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"]
)
def test_macros_are_accepted(macro: str) -> None:
    assert validate_cron(macro) == macro


def test_macros_are_case_insensitive_and_normalized_to_lower_case() -> None:
    assert validate_cron("@Daily") == "@daily"
    assert validate_cron(" @HOURLY ") == "@hourly"


def test_five_field_expressions_have_no_seconds() -> None:
    assert not has_seconds("* * * * *")
    assert not has_seconds("@hourly")


# --- validate_cron: refused ---------------------------------------------------------------


@pytest.mark.parametrize("expression", ["* * * *", "* * * * * * *", "0 10", "*"])
def test_wrong_field_count_is_refused_with_a_message_naming_the_count(expression: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        validate_cron(expression)
    message = str(info.value)
    assert "5 fields" in message
    assert "seconds" in message
    assert f"got {len(expression.split())}" in message


@pytest.mark.parametrize("expression", ["", "   ", "\t\n"])
def test_empty_expression_is_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="empty"):
        validate_cron(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 0 *",
        "* * * 13 *",
        "* * * * 8",
        "60 * * * * *",
        "* 60 * * * *",
        "* * 24 * * *",
    ],
)
def test_out_of_range_values_are_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="out of range"):
        validate_cron(expression)


@pytest.mark.parametrize(
    "expression",
    ["foo bar baz qux quux", "a * * * *", "* * * FOO *", "* * * * FUNDAY", "*/0 * * * *", "1-2-3 * * * *"],
)
def test_garbage_is_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="invalid cron expression"):
        validate_cron(expression)


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"])
def test_never_firing_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="never fires"):
        validate_cron(expression)


@pytest.mark.parametrize("macro", ["@every", "@reboot", "@fortnightly", "@"])
def test_unknown_macro_is_refused_and_the_known_ones_listed(macro: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        validate_cron(macro)
    message = str(info.value)
    assert "unknown macro" in message
    assert "@daily" in message
    assert "@hourly" in message


def test_invalid_schedule_is_a_value_error() -> None:
    # The API relies on this to turn it into a 422 naming the field.
    assert issubclass(InvalidSchedule, ValueError)


def test_error_messages_are_plain_language_without_exception_reprs() -> None:
    for bad in ["* * * *", "60 * * * *", "@every", "0 0 30 2 *", "foo bar baz qux quux"]:
        with pytest.raises(InvalidSchedule) as info:
            validate_cron(bad)
        message = str(info.value)
        assert message
        assert "Error(" not in message
        assert "Traceback" not in message


# --- zone ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"])
def test_known_zones_resolve(name: str) -> None:
    assert zone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/Berlinn", "", "../etc/passwd", "Not A Zone"])
def test_unknown_zone_is_an_invalid_schedule(name: str) -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        zone(name)


# --- next_fire ---------------------------------------------------------------------------------


def test_next_fire_is_strictly_after_even_when_after_matches() -> None:
    assert next_fire("0 * * * *", "UTC", utc(2024, 1, 1, 10)) == utc(2024, 1, 1, 11)
    assert next_fire("0 * * * *", "UTC", utc(2024, 1, 1, 10, 0, 0, 1)) == utc(2024, 1, 1, 11)
    assert next_fire("0 * * * *", "UTC", utc(2024, 1, 1, 9, 59, 59)) == utc(2024, 1, 1, 10)


def test_next_fire_returns_utc() -> None:
    result = next_fire("0 10 * * *", "Asia/Tokyo", utc(2024, 5, 1))
    assert result.tzinfo is UTC
    assert result == utc(2024, 5, 1, 1)


def test_ten_o_clock_in_berlin_is_nine_utc_in_winter() -> None:
    assert next_fire("0 10 * * *", "Europe/Berlin", utc(2024, 1, 15, 12)) == utc(2024, 1, 16, 9)


def test_ten_o_clock_in_berlin_is_eight_utc_in_summer() -> None:
    assert next_fire("0 10 * * *", "Europe/Berlin", utc(2024, 7, 15, 12)) == utc(2024, 7, 16, 8)


def test_daily_fire_follows_local_time_across_the_spring_and_autumn_changes() -> None:
    # Berlin switches to summer time on 2024-03-31 and back on 2024-10-27.
    assert next_fire("0 10 * * *", "Europe/Berlin", utc(2024, 3, 30, 9)) == utc(2024, 3, 31, 8)
    assert next_fire("0 10 * * *", "Europe/Berlin", utc(2024, 10, 26, 8)) == utc(2024, 10, 27, 9)


def test_after_given_in_another_zone_means_the_same_instant() -> None:
    after_utc = utc(2024, 1, 15, 12)
    after_ny = after_utc.astimezone(ZoneInfo("America/New_York"))
    assert next_fire("0 10 * * *", "Europe/Berlin", after_ny) == utc(2024, 1, 16, 9)


def test_half_hour_offset_zone() -> None:
    # Asia/Kolkata is UTC+05:30 all year.
    assert next_fire("0 10 * * *", "Asia/Kolkata", utc(2024, 1, 1)) == utc(2024, 1, 1, 4, 30)


def test_six_field_expression_has_seconds_first() -> None:
    assert next_fire("*/2 * * * * *", "UTC", utc(2024, 7, 15, 12, 0, 1)) == utc(2024, 7, 15, 12, 0, 2)
    assert next_fire("*/2 * * * * *", "UTC", utc(2024, 7, 15, 12, 0, 2)) == utc(2024, 7, 15, 12, 0, 4)
    # "30 0 10 * * *": second 30, minute 0, hour 10.
    assert next_fire("30 0 10 * * *", "UTC", utc(2024, 1, 1)) == utc(2024, 1, 1, 10, 0, 30)


def test_weekday_names_and_ranges() -> None:
    # 2024-01-05 is a Friday; the next weekday 09:00 is Monday 2024-01-08.
    assert next_fire("0 9 * * MON-FRI", "UTC", utc(2024, 1, 5, 10)) == utc(2024, 1, 8, 9)


def test_month_names() -> None:
    assert next_fire("0 0 1 JAN *", "UTC", utc(2024, 6, 1)) == utc(2025, 1, 1)


def test_february_29_waits_for_a_leap_year() -> None:
    assert next_fire("0 0 29 2 *", "UTC", utc(2024, 3, 1)) == utc(2028, 2, 29)


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", utc(2024, 5, 15, 11)),
        ("@daily", utc(2024, 5, 16)),
        ("@midnight", utc(2024, 5, 16)),
        ("@weekly", utc(2024, 5, 19)),  # Sunday
        ("@monthly", utc(2024, 6, 1)),
        ("@yearly", utc(2025, 1, 1)),
        ("@annually", utc(2025, 1, 1)),
    ],
)
def test_macros_fire_when_expected(macro: str, expected: datetime) -> None:
    assert next_fire(macro, "UTC", utc(2024, 5, 15, 10, 30)) == expected


def test_macro_is_evaluated_in_local_time() -> None:
    assert next_fire("@daily", "Europe/Berlin", utc(2024, 7, 15, 12)) == utc(2024, 7, 15, 22)


def test_next_fire_with_unknown_zone_is_an_invalid_schedule() -> None:
    with pytest.raises(InvalidSchedule):
        next_fire("0 * * * *", "Nowhere/Atlantis", utc(2024, 1, 1))


def test_repeated_calls_are_memoized_and_equal() -> None:
    args = ("7 7 * * *", "Pacific/Chatham", utc(2031, 3, 3, 3, 3))
    first = next_fire(*args)
    hits_before = _next_fire_utc.cache_info().hits
    second = next_fire(*args)
    assert second == first
    assert _next_fire_utc.cache_info().hits == hits_before + 1


def test_successive_fires_are_increasing() -> None:
    moment = utc(2024, 1, 1)
    seen = []
    for _ in range(10):
        moment = next_fire("*/7 * * * *", "America/St_Johns", moment)
        seen.append(moment)
    assert seen == sorted(set(seen))
    assert all(b - a <= timedelta(minutes=7) for a, b in pairwise(seen))


def test_after_in_the_repeated_autumn_hour_is_not_confused_with_the_first_pass() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    first_pass = datetime(2024, 10, 27, 2, 30, fold=0, tzinfo=berlin)  # 00:30Z
    second_pass = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=berlin)  # 01:30Z
    assert next_fire("*/15 * * * *", "Europe/Berlin", first_pass) == utc(2024, 10, 27, 0, 45)
    result = next_fire("*/15 * * * *", "Europe/Berlin", second_pass)
    assert result > second_pass
    assert result == utc(2024, 10, 27, 1, 45)
