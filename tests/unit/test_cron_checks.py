"""Cron expressions that do not say what they seem to (core/cron_checks.py, via validate_cron)."""

from __future__ import annotations

import pytest

from core import cron
from core.cron import InvalidSchedule, validate_cron

# Other values of the class than the (1-0 in the minutes, 30 February): every field.
REVERSED = [
    ("45-15 * * * *", "minute"),
    ("0 20-4 * * *", "hour"),
    ("50-5/5 * * * * *", "second"),
    ("0 45-15/10 * * * *", "minute"),
    ("0 0 25-5 * *", "day-of-month"),
    ("0 0 1 OCT-MAR *", "month"),
    ("0 0 1 12-1/2 *", "month"),
    ("0 9 * * SAT-TUE", "day-of-week"),
    ("0 9 * * 6-1", "day-of-week"),
    ("0 9 * * thu-sun", "day-of-week"),
    ("0 9 * * 7-2", "day-of-week"),
    ("0 9 * * 1-3,5-2", "day-of-week"),
]

NEVER = [
    "0 12 30 feb *",
    "0 8 31 9,11 *",
    "0 0 31 6,FEB *",
    "15 10 30,31 2 *",
    "0 0 0 30-31 2 *",
    "0 0 31 apr-jun/2 *",
    "0 0 31 2 */3",  # the weekday field starts with "*": the days are ANDed, as in Vixie cron
]


@pytest.mark.parametrize(("expression", "field"), REVERSED)
def test_a_reversed_range_is_refused_naming_its_field(expression: str, field: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        validate_cron(expression)
    message = str(info.value)
    assert f"{field} range" in message and "runs backwards" in message and "do not wrap" in message


def test_the_refusal_says_how_to_write_a_wrap() -> None:
    with pytest.raises(InvalidSchedule, match="'22-23,0-4'"):
        validate_cron("0 22-4 * * *")
    with pytest.raises(InvalidSchedule, match="SAT-7"):
        validate_cron("0 9 * * SAT-SUN")


@pytest.mark.parametrize("expression", NEVER)
def test_an_expression_that_never_fires_is_refused_saying_why(expression: str) -> None:
    with pytest.raises(InvalidSchedule, match="never fires: there is no day"):
        validate_cron(expression)


@pytest.mark.parametrize("expression", [*NEVER, *(e for e, _ in REVERSED)])
def test_refusals_are_made_without_croniter(expression: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """No search on the API: a never-firing expression used to cost croniter milliseconds."""

    def no_croniter(*_: object, **__: object) -> None:
        raise AssertionError("croniter was asked")

    monkeypatch.setattr(cron, "croniter", no_croniter)
    with pytest.raises(InvalidSchedule):
        validate_cron(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "0 0 29 2 *",  # leap years
        "0 0 31 2 MON",  # both day fields restricted: cron ORs them, so every Monday of February
        "0 0 30 feb 1-5",
        "0 0 31 2,3 *",
        "0 0 31 */2 *",
        "0 0 L 2 *",
        "0 9 * * 1-5",
        "0 9 * * MON-7",
        "0 9 * * 0-7",
        "0 12 * * 0-SUN",  # an equal-ended range is its one value
        "0 0 1 JAN-DEC *",
        "0-59/15 0-23 1-31 1-12 0-6",
        "30 1 * * * 5-5",
    ],
)
def test_ascending_ranges_and_days_that_come_are_accepted(expression: str) -> None:
    validate_cron(expression)
