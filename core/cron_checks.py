"""Cron expressions croniter takes but that do not say what they seem to: refused before it runs.

- A reversed range (``1-0``, ``30-10/5``, ``FRI-MON``): croniter wraps it around the field's
  end, so ``1-0`` in the minutes fires every minute; cron has no wrapping ranges, and the
  writer most likely swapped the ends. A wrap is written as a list: ``FRI-SAT,SUN-MON``.
- A day of the month that none of the allowed months has (``0 0 30 2 *``, ``0 0 31 4,6 *``):
  such an expression never fires. croniter finds that out only by searching years of dates
  (milliseconds a request); here it is a comparison with the months' longest lengths, February
  counted as 29 days. When both day fields are restricted cron fires on either (the OR rule),
  so the weekdays make it fire and it is not refused.

Only what is certain is refused; anything this module does not read (``L``, ``W``, ``#``, ``?``,
values out of bounds) is left to croniter, which accepts it or says why not.
"""

from __future__ import annotations

from core.cron_fast import field_values
from core.exceptions import InvalidSchedule

# By position in a 6-field expression (a 5-field one has no seconds).
_FIELDS = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
_WEEKDAY = 5
_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {},
    {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)},
    {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
)
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTH_NAMES = tuple(
    "January February March April May June July August September October November December".split()
)
_LONGEST = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February's in a leap year


def check_fields(fields: list[str], days_or: bool) -> None:
    """Raise InvalidSchedule for a reversed range in any field or for days that never come.

    ``fields`` are the expression's 5 or 6 fields; ``days_or``: whether a day matching either day
    field fires (cron's OR rule, core.cron's ``_days_or``).
    """
    offset = 0 if len(fields) == 6 else 1
    for index, text in enumerate(fields):
        _refuse_reversed(text, index + offset)
    if not days_or:
        _refuse_missing_days(fields[-3], fields[-2])


def _number(token: str, position: int) -> int | None:
    if token.isdigit() and token.isascii():
        return int(token)
    return _NAMES[position].get(token.lower())


def _refuse_reversed(text: str, position: int) -> None:
    for item in text.split(","):
        low_text, dash, high_text = item.partition("/")[0].partition("-")
        if not dash:
            continue
        low, high = _number(low_text, position), _number(high_text, position)
        if low is None or high is None or low <= high:
            continue
        if position == _WEEKDAY and high == 0:
            hint = f"{low_text}-7 (7 is Sunday too)"
        elif position == _WEEKDAY and low == 7:
            hint = f"0-{high_text} (0 is Sunday, as 7 is)"
        else:
            first, last = _BOUNDS[position]
            head = low_text if low == last else f"{low_text}-{last}"
            tail = high_text if high == first else f"{first}-{high_text}"
            hint = f"as a list: '{head},{tail}'"
        raise InvalidSchedule(
            f"{_FIELDS[position]} range {item!r} runs backwards ({low} comes after {high}): cron "
            f"ranges do not wrap around; write it from low to high, or {hint}"
        )


def _refuse_missing_days(day_text: str, month_text: str) -> None:
    if day_text.startswith(("*", "?")):
        return  # unrestricted, or a step from the 1st: the 1st always comes
    days = field_values(day_text.lower(), 3)
    months = field_values(month_text.lower(), 4)
    if days is None or months is None:
        return  # written in a way croniter reads for itself
    longest = max(_LONGEST[month] for month in months)
    if days[0] <= longest:
        return
    names = [_MONTH_NAMES[month - 1] for month in months]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    leap = ", counting 29 February" if 2 in months else ""
    raise InvalidSchedule(
        f"never fires: there is no day {day_text} in {listed} (at most {longest} days{leap})"
    )
