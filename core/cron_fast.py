"""A fast next fire for common cron shapes: fields parsed to value sets, searched on the wall clock.

croniter stays the definition (core.cron): this module answers only when it can prove its answer
is the one core.cron's croniter path gives, and returns None (fall back) otherwise. It reads
numbers, ``*``, ``a-b``, ``*/k``, ``a-b/k``, ``a/k``, lists of those and month/weekday names,
exactly as croniter expands them, and only away from any change of the zone's UTC offset.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from calendar import isleap
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

# Fields by position as in a 6-field expression (seconds first: second minute hour day month
# weekday); a 5-field one is read with a seconds field of "0" in front.
_DAY, _WEEKDAY = 3, 5
# croniter's bounds per field, and the count of values at which it reads a field as "*".
_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MEANS_ALL = (60, 60, 24, 31, 12, 7)
_NAMES: tuple[dict[str, int], ...] = (
    {},
    {},
    {},
    {},
    {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)},
    {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
)
_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# Far enough for any expression that fires at least once every few years; rarer ones (Friday the
# 13th of February) and never-firing ones (30 February) are left to croniter.
_MONTHS_SEARCHED = 5 * 12 + 1

# Offset changes in [1999, 2075) are at least 6.96 days apart in every zone (America/Boa_Vista's
# one-week DST of October 2000), so a scan comparing offsets this far apart misses none: a change
# and its undoing cannot both fall in one step. tests/property/strategies.py relies on the same
# bound; tests/unit/test_cron_fast.py checks it against a finer scan.
_SCAN_STEP = 6 * 86_400
_SAFE_FROM = int(datetime(1999, 1, 1, tzinfo=UTC).timestamp())
_SAFE_UNTIL = int(datetime(2075, 1, 1, tzinfo=UTC).timestamp())
# core.cron looks this far around a start for repeated hours (its _MAX_SHIFT): that stretch, and
# as much after the fire, must be free of offset changes too, so no DST policy has work to do.
_MARGIN = 3 * 3600


class Spec(NamedTuple):
    """One expression's allowed values: sorted tuples for the time of day, lookups for the days."""

    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[bool, ...]  # indexed by day of month, 1-31
    months: tuple[bool, ...]  # indexed by month, 1-12
    weekdays: tuple[bool, ...]  # indexed by cron weekday, Sunday 0
    days_or: bool  # a day matching either day field fires (cron's OR rule), else both must match
    has_seconds: bool


def _number(token: str, position: int) -> int | None:
    if token.isdigit() and token.isascii():
        return int(token)
    return _NAMES[position].get(token)


def _expand_item(item: str, position: int) -> list[int] | None:  # noqa: C901 (cron field grammar, one case each)
    """The values of one list item as croniter expands it, or None for anything not handled."""
    base, slash, step_text = item.partition("/")
    low_text, dash, high_text = base.partition("-")
    lo, hi = _BOUNDS[position]
    if slash:
        if not (step_text.isdigit() and step_text.isascii()) or int(step_text) == 0:
            return None
        step = int(step_text)
    else:
        step = 1
    if low_text == "*":
        if dash or not slash:
            return None  # "*-5" is invalid and a bare "*" inside a list is read oddly by croniter
        return list(range(lo, hi + 1, step))
    low = _number(low_text, position)
    high = _number(high_text, position) if dash else low
    if low is None or high is None:
        return None
    # core.cron's _collapse_fields: an equal-ended range as written is the single value; croniter
    # itself would read it as the whole field.
    if dash and low == high:
        return _single(low, position)
    if not dash and not slash:
        return _single(low, position)
    if position == _WEEKDAY:
        low, high = (0 if low == 7 else low), (0 if high == 7 else high)  # 7 is Sunday too
    if low < lo or max(low, high) > hi:
        return None  # croniter rejects most of these; the rest it reads in ways not worth copying
    if not dash:
        # "a/k" is a start with a step, up to the field's end.
        return list(range(low, hi + 1, step))
    if low == high:
        low, high = lo, hi  # "7-0" and "SUN-7" in the weekday field: croniter's whole cycle
    if low > high:
        # A range through the field's end ("FRI-MON", "NOV-FEB/2"): croniter keeps the step's
        # rhythm across the wrap only when the last value before it is within a step of the end.
        head = list(range(low, hi + 1, step))
        skip = 0
        if head[-1] - lo + step > hi - lo + 1 and hi - head[-1] < step:
            skip = step - (hi - head[-1])
        return head + list(range(lo + skip, high + 1, step))
    return list(range(low, high + 1, step))


def _single(value: int, position: int) -> list[int] | None:
    if position == _WEEKDAY and value == 7:
        value = 0  # Sunday, as croniter reads it
    lo, hi = _BOUNDS[position]
    return [value] if lo <= value <= hi else None


@lru_cache(maxsize=4096)
def _field(text: str, position: int) -> tuple[int, ...] | None:
    """The sorted values of one field; cached, as distinct expressions mostly share their fields."""
    if text == "*":
        lo, hi = _BOUNDS[position]
        return tuple(range(lo, hi + 1))
    values: set[int] = set()
    for item in text.split(","):
        expanded = _expand_item(item, position)
        if expanded is None:
            return None
        values.update(expanded)
    return tuple(sorted(values))


def field_values(text: str, position: int) -> tuple[int, ...] | None:
    """The sorted values of a lower-case field at ``position`` (as in a 6-field expression), or
    None for what this module leaves to croniter."""
    return _field(text, position)


@lru_cache(maxsize=4096)
def _mask(values: tuple[int, ...], size: int) -> tuple[bool, ...]:
    allowed = set(values)
    return tuple(i in allowed for i in range(size))


_EVERY_DAY = (False,) + (True,) * 31
_EVERY_WEEKDAY = (True,) * 7


@lru_cache(maxsize=16_384)
def parse(expression: str) -> Spec | None:
    """The expression's value sets, or None when it uses anything this module leaves to croniter."""
    fields = expression.lower().split()
    count = len(fields)
    if count == 5:
        fields.insert(0, "0")
    elif count != 6:
        return None
    seconds, minutes, hours = _field(fields[0], 0), _field(fields[1], 1), _field(fields[2], 2)
    days, months, weekdays = _field(fields[3], 3), _field(fields[4], 4), _field(fields[5], 5)
    if seconds is None or minutes is None or hours is None:
        return None
    if days is None or months is None or weekdays is None:
        return None
    day_text, weekday_text = fields[_DAY], fields[_WEEKDAY]
    # croniter reads a day field holding every value as "*" unless the other day field has no "*"
    # in it (its guard against over-optimizing), and ORs the days only when neither is "*".
    day_star = day_text == "*" or (len(days) == _MEANS_ALL[_DAY] and "*" in weekday_text)
    weekday_star = weekday_text == "*" or (len(weekdays) == _MEANS_ALL[_WEEKDAY] and "*" in day_text)
    # core.cron's _days_or: Vixie cron counts a day field starting with "*" as unrestricted.
    vixie_or = not (day_text.startswith("*") or weekday_text.startswith("*"))
    days_or = vixie_or and not day_star and not weekday_star
    if not days_or and not day_star and not _day_fits_some_month(days, months):
        return None  # "0 0 30 2 *" never fires: croniter says so in its own words
    return Spec(
        seconds,
        minutes,
        hours,
        _EVERY_DAY if day_star else _mask(days, 32),
        _mask(months, 13),
        _EVERY_WEEKDAY if weekday_star else _mask(weekdays, 7),
        days_or,
        count == 6,
    )


def _day_fits_some_month(days: tuple[int, ...], months: tuple[int, ...]) -> bool:
    longest = max(29 if month == 2 else _DAYS_IN_MONTH[month] for month in months)
    return days[0] <= longest


def _days_in(year: int, month: int) -> int:
    return 29 if month == 2 and isleap(year) else _DAYS_IN_MONTH[month]


def _time_at_or_after(spec: Spec, hour: int, minute: int, second: int) -> tuple[int, int, int] | None:
    """The earliest allowed time of day at or after the given one, or None if none is left today."""
    hours, minutes, seconds = spec.hours, spec.minutes, spec.seconds
    h = bisect_left(hours, hour)
    if h < len(hours) and hours[h] == hour:
        m = bisect_left(minutes, minute)
        if m < len(minutes) and minutes[m] == minute:
            s = bisect_left(seconds, second)
            if s < len(seconds):
                return hour, minute, seconds[s]
            m += 1
        if m < len(minutes):
            return hour, minutes[m], seconds[0]
        h += 1
    if h < len(hours):
        return hours[h], minutes[0], seconds[0]
    return None


Wall = tuple[int, int, int, int, int, int]  # year, month, day, hour, minute, second


def next_wall(spec: Spec, after: datetime) -> Wall | None:
    """The first wall time strictly after the one ``after`` shows (its tzinfo is not looked at)
    that the expression names, searching about five years; None past that."""
    year, month, day = after.year, after.month, after.day
    days, months, weekdays, days_or = spec.days, spec.months, spec.weekdays, spec.days_or
    weekday = after.isoweekday() % 7
    if months[month] and ((days[day] or weekdays[weekday]) if days_or else (days[day] and weekdays[weekday])):
        # Strictly after: the next second (or minute); a 60 carries over in the search itself.
        if spec.has_seconds:
            today = _time_at_or_after(spec, after.hour, after.minute, after.second + 1)
        else:
            today = _time_at_or_after(spec, after.hour, after.minute + 1, 0)
        if today is not None:
            return year, month, day, *today
    weekday = weekday + 1 if weekday < 6 else 0  # that of the day after the start
    day += 1
    for _ in range(_MONTHS_SEARCHED):
        last = _days_in(year, month)
        if months[month]:
            for candidate in range(day, last + 1):
                if (
                    (days[candidate] or weekdays[weekday])
                    if days_or
                    else (days[candidate] and weekdays[weekday])
                ):
                    return year, month, candidate, spec.hours[0], spec.minutes[0], spec.seconds[0]
                weekday = weekday + 1 if weekday < 6 else 0
        else:
            weekday = (weekday + last - day + 1) % 7
        day = 1
        month += 1
        if month == 13:
            month, year = 1, year + 1
    return None


class OffsetChanges(NamedTuple):
    """A zone's UTC-offset changes in [1999, 2075): instants, offsets, and the wall times each
    change skips or repeats."""

    at: tuple[int, ...]  # Unix seconds, ascending
    offsets: tuple[timedelta, ...]  # offsets[k] is in force before at[k] and from at[k - 1] on
    # [start, end) of the wall times change k skips or repeats, as Unix seconds of the wall time
    # read as if it were UTC.
    walls: tuple[tuple[int, int], ...]


@lru_cache(maxsize=1024)
def offset_changes(tz: ZoneInfo) -> OffsetChanges:
    """Scanned once per zone (some milliseconds): a bisect on it replaces zoneinfo calls per fire."""

    def offset(timestamp: int) -> timedelta:
        result = datetime.fromtimestamp(timestamp, tz).utcoffset()
        assert result is not None
        return result

    at: list[int] = []
    offsets = [offset(_SAFE_FROM)]
    lo, before = _SAFE_FROM, offsets[0]
    while lo < _SAFE_UNTIL:
        hi = min(lo + _SCAN_STEP, _SAFE_UNTIL)
        after = offset(hi)
        if after != before:
            a, b = lo, hi  # offset(a) == before != offset(b): bisect down to the second
            while b - a > 1:
                mid = (a + b) // 2
                if offset(mid) == before:
                    a = mid
                else:
                    b = mid
            at.append(b)
            offsets.append(after)
        lo, before = hi, after
    walls = tuple(
        (change + int(min(old, new).total_seconds()), change + int(max(old, new).total_seconds()))
        for change, old, new in zip(at, offsets, offsets[1:], strict=False)
    )
    return OffsetChanges(tuple(at), tuple(offsets), walls)


def next_fire_fast(expression: str, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first fire strictly after ``after`` (aware UTC) in UTC, or None to ask croniter.

    Answers only when the zone's offset is the same from three hours before ``after`` to three
    hours after the fire: no clock change is near, so no DST policy applies and the wall clock
    maps to UTC by one fixed offset, which is when croniter's own result is that plain wall time.
    """
    if expression.startswith("@"):
        return None
    start = after.timestamp()
    if not _SAFE_FROM + _MARGIN <= start < _SAFE_UNTIL - _MARGIN:
        return None
    spec = parse(expression)
    if spec is None:
        return None
    changes = offset_changes(tz)
    index = bisect_right(changes.at, start - _MARGIN)  # the first change after the window opens
    offset = changes.offsets[index]
    # UTC-labelled local wall times: plain arithmetic on them is wall-clock arithmetic.
    wall = next_wall(spec, after.astimezone(UTC) + offset)
    if wall is None:
        return None
    fire = datetime(*wall, tzinfo=UTC) - offset
    end = fire.timestamp() + _MARGIN
    if end >= _SAFE_UNTIL or (index < len(changes.at) and changes.at[index] <= end):
        return None
    # Offset changes bigger than the margin (Samoa's day in 2011) could still skip or repeat the
    # wall time from outside the window: it must name exactly one instant.
    seconds = end - _MARGIN + offset.total_seconds()
    walls = changes.walls
    if index > 0 and walls[index - 1][0] <= seconds < walls[index - 1][1]:
        return None
    if index < len(walls) and walls[index][0] <= seconds < walls[index][1]:
        return None
    return fire
