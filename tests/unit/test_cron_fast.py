"""The cron fast path (core/cron_fast.py): parsing, the day rules, and where it leaves croniter to answer."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError

import core.cron
from core.cron import _next_fire_croniter, next_fire
from core.cron_fast import Spec, next_fire_fast, next_wall, offset_changes, parse
from core.states import DstGap, DstRepeated
from tests.property.strategies import scan_transitions


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def spec(expression: str) -> Spec:
    parsed = parse(expression)
    assert parsed is not None
    return parsed


def allowed(mask: tuple[bool, ...]) -> list[int]:
    return [index for index, ok in enumerate(mask) if ok]


# --- parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minute", "values"),
    [
        ("*", list(range(60))),
        ("7", [7]),
        ("07", [7]),
        ("10-13", [10, 11, 12, 13]),
        ("*/15", [0, 15, 30, 45]),
        ("10-30/10", [10, 20, 30]),
        ("50/4", [50, 54, 58]),
        ("59/15", [59]),
        ("1,5-6,*/20", [0, 1, 5, 6, 20, 40]),
        ("5-5", [5]),  # an equal-ended range is the value (core.cron's _collapse_fields), not the field
        ("5-5/2", [5]),
        ("58-1", [58, 59, 0, 1]),  # wrapping through the field's end, as croniter reads it
    ],
)
def test_minute_field_shapes(minute: str, values: list[int]) -> None:
    assert list(spec(f"{minute} * * * *").minutes) == sorted(values)


def test_six_fields_have_seconds_first() -> None:
    parsed = spec("1,2 3 4 * * *")
    assert parsed.has_seconds
    assert (parsed.seconds, parsed.minutes, parsed.hours) == ((1, 2), (3,), (4,))
    five = spec("3 4 * * *")
    assert not five.has_seconds
    assert five.seconds == (0,)


@pytest.mark.parametrize(
    ("month", "values"),
    [
        ("JAN", [1]),
        ("jan-mar", [1, 2, 3]),
        ("Nov-Feb", [11, 12, 1, 2]),
        ("FEB/5", [2, 7, 12]),
        ("MAR-3", [3]),
    ],
)
def test_month_names(month: str, values: list[int]) -> None:
    assert allowed(spec(f"0 0 * {month} *").months) == sorted(values)


@pytest.mark.parametrize(
    ("weekday", "values"),
    [
        ("7", [0]),  # Sunday, as croniter reads it
        ("SUN", [0]),
        ("mon-fri", [1, 2, 3, 4, 5]),
        ("5-7", [0, 5, 6]),
        ("FRI-MON", [0, 1, 5, 6]),
        ("0-7", [0, 1, 2, 3, 4, 5, 6]),
        ("7/3", [0, 3, 6]),
        ("*/2", [0, 2, 4, 6]),
        ("SUN-7", [0, 1, 2, 3, 4, 5, 6]),  # croniter: equal ends after 7 -> 0 mean the whole week
        ("7-7", [0]),
    ],
)
def test_weekday_values(weekday: str, values: list[int]) -> None:
    assert allowed(spec(f"0 0 * * {weekday}").weekdays) == values


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 L * *",  # last day of the month
        "0 0 15W * *",  # nearest weekday
        "0 0 * * 1#2",  # second Monday
        "0 0 * * 5L",
        "0 0 ? * 1",
        "H * * * *",  # hashed
        "@daily",
        "0 0 1 1 * 2030",  # 7 fields: years
        "0 0 * *",
        "60 * * * *",  # out of range: croniter says why
        "0 0 0 * *",
        "*/0 * * * *",
        "1,* * * * *",  # a bare star in a list: croniter keeps the star
        "*-5 * * * *",
        "0 0 * * MONDAY",
        "0 0 30 2 *",  # never fires: croniter raises, in its words
        "0 0 31 4,6,9,11 *",
    ],
)
def test_what_the_fast_path_leaves_to_croniter(expression: str) -> None:
    assert parse(expression) is None
    assert next_fire_fast(expression, ZoneInfo("UTC"), utc(2024, 1, 1)) is None


# --- the day rules -------------------------------------------------------------------------------


def fast(expression: str, after: datetime, zone: str = "UTC") -> datetime:
    result = next_fire_fast(expression, ZoneInfo(zone), after)
    assert result is not None
    assert result == _next_fire_croniter(expression, zone, after, DstGap.SHIFT, DstRepeated.FIRST)
    return result


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # Both day fields restricted: either fires (2024-01-05 is a Friday, the 13th a Saturday).
        ("0 0 13 * 5", utc(2024, 1, 1), utc(2024, 1, 5)),
        ("0 0 13 * 5", utc(2024, 1, 12), utc(2024, 1, 13)),
        # A day field starting with "*" counts as unrestricted (Vixie cron): both must match.
        ("0 0 */2 * 1", utc(2024, 1, 1, 1), utc(2024, 1, 15)),  # odd days that are Mondays
        ("0 0 13 * */2", utc(2024, 1, 1), utc(2024, 1, 13)),  # the 13th on Sun/Tue/Thu/Sat
        ("0 0 * * 5", utc(2024, 1, 1), utc(2024, 1, 5)),
        # Every day of the month, ORed with Mondays: every day.
        ("0 0 1-31 * 1", utc(2024, 1, 2, 1), utc(2024, 1, 3)),
        # croniter reads a whole week as "*" when the day field has a "*" in it: the days alone.
        ("0 0 1,*/10 * 0-6", utc(2024, 1, 2), utc(2024, 1, 11)),
    ],
)
def test_day_rules(expression: str, after: datetime, expected: datetime) -> None:
    assert fast(expression, after) == expected


def test_weekday_seven_is_sunday() -> None:
    assert fast("0 12 * * 7", utc(2024, 1, 1)) == utc(2024, 1, 7, 12)  # 2024-01-07 is a Sunday
    assert fast("30 0 12 * * 7", utc(2024, 1, 7, 12)) == utc(2024, 1, 7, 12, 0, 30)


def test_strictly_after_to_the_second_or_minute() -> None:
    assert fast("* * * * * *", utc(2024, 1, 1, 0, 0, 5) + timedelta(microseconds=999_999)) == utc(
        2024, 1, 1, 0, 0, 6
    )
    assert fast("* * * * *", utc(2024, 1, 1, 0, 0, 5)) == utc(2024, 1, 1, 0, 1)
    assert fast("0 0 29 2 *", utc(2024, 3, 1)) == utc(2028, 2, 29)


def test_a_never_matching_search_gives_up_instead_of_looping() -> None:
    # 29 February on a Sunday ("*/7" is Sunday, and a star: ANDed): from 2025 the next is 2032,
    # past the search.
    parsed = spec("0 0 29 2 */7")
    begun = time.perf_counter()
    assert next_wall(parsed, datetime(2025, 1, 1)) is None
    assert time.perf_counter() - begun < 0.1
    assert next_fire_fast("0 0 29 2 */7", ZoneInfo("UTC"), utc(2025, 1, 1)) is None
    assert next_fire("0 0 29 2 */7", "UTC", utc(2025, 1, 1)) == utc(2032, 2, 29)
    # No 30 February at all: the fast path declines, croniter says it never fires.
    assert next_fire_fast("0 0 30 2 *", ZoneInfo("UTC"), utc(2025, 1, 1)) is None
    with pytest.raises(CroniterBadDateError):
        next_fire("0 0 30 2 *", "UTC", utc(2025, 1, 1))


# --- offset changes ------------------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("expression", "after"),
    [
        ("30 2 * * *", utc(2024, 3, 30, 12)),  # 02:30 is skipped on 2024-03-31
        ("0 3 * * *", utc(2024, 3, 30, 12)),  # right after the jump
        ("0 2 * * *", utc(2024, 10, 26, 12)),  # in the repeated hour
        ("30 2 * * *", utc(2024, 10, 27, 1, 10)),  # from the repeated hour's second pass
        ("0 5 * * *", utc(2024, 10, 27, 1, 30)),  # three hours after the change: within the margin
        ("0 12 * * 1", utc(2024, 10, 25)),  # a change between the start and the fire
    ],
)
def test_near_an_offset_change_croniter_answers(expression: str, after: datetime) -> None:
    assert next_fire_fast(expression, BERLIN, after) is None


def test_away_from_changes_the_fast_path_answers() -> None:
    assert fast("30 2 * * *", utc(2024, 4, 2), "Europe/Berlin") == utc(2024, 4, 2, 0, 30)
    assert fast("0 9 * * MON-FRI", utc(2024, 6, 1), "America/New_York") == utc(2024, 6, 3, 13)
    assert fast("0 0 1 1 *", utc(2024, 1, 2), "Asia/Kolkata") == utc(2024, 12, 31, 18, 30)


def test_outside_the_scanned_years_croniter_answers() -> None:
    assert next_fire_fast("* * * * *", ZoneInfo("UTC"), utc(1998, 6, 1)) is None
    assert next_fire_fast("* * * * *", ZoneInfo("UTC"), utc(2080, 6, 1)) is None


def test_offset_changes_are_found_to_the_second() -> None:
    changes = offset_changes(BERLIN)
    assert int(utc(2024, 3, 31, 1).timestamp()) in changes.at
    assert int(utc(2024, 10, 27, 1).timestamp()) in changes.at
    assert len(changes.offsets) == len(changes.at) + 1
    assert offset_changes(ZoneInfo("UTC")).at == ()


@pytest.mark.parametrize("name", ["America/Boa_Vista", "Africa/Casablanca", "Africa/Cairo", "Asia/Gaza"])
def test_the_coarse_scan_misses_no_short_offset_period(name: str) -> None:
    """The scan steps six days: zones whose offset changed back within weeks, against a fine scan."""
    fine = scan_transitions(name, timedelta(hours=6))
    assert offset_changes(ZoneInfo(name)).at == tuple(int(change.timestamp()) for change in fine)


def test_next_fire_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_croniter(*_: object) -> datetime:
        raise AssertionError("croniter asked")

    monkeypatch.setattr(core.cron, "_next_fire_croniter", no_croniter)
    core.cron._next_fire_utc.cache_clear()
    assert next_fire("5 4 3 * * 2", "Europe/Berlin", utc(2026, 11, 25, 19)) == utc(2026, 12, 1, 2, 4, 5)
    core.cron._next_fire_utc.cache_clear()
