"""Cron expressions and time zones: validation and the next fire, as pure functions of time.

A 6-field expression has the seconds first (Quartz, Spring, node-cron): ``*/2 * * * * *`` is
every two seconds. Expressions are evaluated in the reminder's own IANA time zone on local
wall-clock time, and the result is returned in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


# croniter reads a range with equal ends ("0-0", "MON-MON/2") as the whole field; cron means the
# single value, so such ranges are rewritten before croniter ever sees them.
_EQUAL_RANGE = re.compile(r"^(\w+)-(\w+)(/\d+)?$")


class InvalidSchedule(ValueError):
    """A cron expression or time zone that cannot be used; the message says why in plain words."""


def has_seconds(expression: str) -> bool:
    """Whether the expression carries a leading seconds field."""
    return len(expression.split()) == 6


@lru_cache(maxsize=4096)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name, or InvalidSchedule."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r}; use an IANA name like 'Europe/Berlin'") from exc


def validate_cron(expression: str) -> str:
    """Return the expression with normalized spacing, or raise InvalidSchedule saying why."""
    normalized = " ".join(expression.split())
    if not normalized:
        raise InvalidSchedule("cron expression is empty")
    if normalized.startswith("@"):
        if normalized.lower() not in MACROS:
            raise InvalidSchedule(f"unknown macro {normalized!r}; use one of {', '.join(sorted(MACROS))}")
        return normalized.lower()
    fields = _collapse_fields(normalized.split(" "))
    normalized = " ".join(fields)
    if len(fields) not in (5, 6):
        raise InvalidSchedule(
            f"cron expression needs 5 fields (minute hour day month weekday) or 6 with seconds "
            f"first; got {len(fields)}"
        )
    try:
        itr = croniter(normalized, datetime(2000, 1, 1, tzinfo=UTC), second_at_beginning=len(fields) == 6)
        itr.get_next(datetime)
    except CroniterBadDateError as exc:
        raise InvalidSchedule(
            f"cron expression {normalized!r} never fires (no date matches it, like 30 February)"
        ) from exc
    except CroniterError as exc:
        raise InvalidSchedule(f"invalid cron expression: {exc}") from exc
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise InvalidSchedule(f"invalid cron expression {normalized!r}") from exc
    return normalized


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_WEEKDAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}


def _value(token: str, names: dict[str, int]) -> int | None:
    # Digits stay as written: "0-7" is the whole week, not Sunday alone.
    return int(token) if token.isdigit() else names.get(token.lower())


def _collapse_fields(fields: list[str]) -> list[str]:
    """Each field with its equal-ended ranges ("0-0", "MON-1", "JAN-1/2") as the single value."""
    offset = 1 if len(fields) == 6 else 0
    result = []
    for index, field in enumerate(fields):
        position = index - offset
        names = _MONTHS if position == 3 else _WEEKDAYS if position == 4 else {}
        result.append(_collapse_equal_ranges(field, names))
    return result


def _collapse_equal_ranges(field: str, names: dict[str, int]) -> str:
    items = []
    for item in field.split(","):
        match = _EQUAL_RANGE.match(item)
        if match:
            low, high = _value(match.group(1), names), _value(match.group(2), names)
            if low is not None and low == high:
                item = match.group(1)
        items.append(item)
    return ",".join(items)


def _fixed_time(expression: str) -> bool:
    """Whether the time of day is named (``30 2``, ``0 1-3``), not a wildcard or ``*/k`` step.

    Only such fires are "at a time" that a repeated hour could show twice; wildcard and interval
    expressions keep firing through both passes, at real elapsed intervals.
    """
    fields = expression.split()
    if len(fields) < 5:
        return False  # a macro fires at 00:00, which no repeated hour of the zones here covers
    time_fields = fields[:3] if len(fields) == 6 else fields[:2]
    return all("*" not in field for field in time_fields)


def _second_pass_of_repeated_hour(moment: datetime, tz: ZoneInfo) -> bool:
    local = moment.astimezone(tz)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def next_fire(expression: str, timezone: str, after: datetime) -> datetime:
    """The first fire strictly after ``after`` (aware), in UTC."""
    # Keyed in UTC: the two passes of a repeated local hour compare (and hash) equal in one zone.
    return _next_fire_utc(expression, timezone, after.astimezone(UTC))


@lru_cache(maxsize=65_536)
def _next_fire_utc(expression: str, timezone: str, after: datetime) -> datetime:
    """Memoized: rows that share (expression, zone, previous fire) share one computation, which
    is what makes a burst of identical schedules cheap."""
    tz = zone(timezone)
    local = after.astimezone(tz)
    if not expression.startswith("@"):
        expression = " ".join(_collapse_fields(expression.split()))
    itr = croniter(expression, local, second_at_beginning=has_seconds(expression))
    fixed = _fixed_time(expression)
    # Around a DST fold the local iterator can hand back an instant that is not later in UTC, and
    # a fixed-time expression may skip a whole repeated hour of candidates (3,600 at most).
    for _ in range(4000):
        candidate: datetime = itr.get_next(datetime).astimezone(UTC)
        # A fixed-time fire in a repeated hour fires once, in the first pass (as Debian's cron
        # does); wildcard and interval expressions keep firing through both passes.
        if candidate > after and not (fixed and _second_pass_of_repeated_hour(candidate, tz)):
            return candidate
    raise InvalidSchedule(f"cron expression {expression!r} does not advance after {after.isoformat()}")


def upcoming(expression: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fires strictly after ``after``, in UTC."""
    fires: list[datetime] = []
    current = after
    for _ in range(count):
        current = next_fire(expression, timezone, current)
        fires.append(current)
    return fires


def on_transition_day(moment: datetime, timezone: str) -> bool:
    """Whether the local calendar day of ``moment`` has a UTC-offset change (a DST switch)."""
    tz = zone(timezone)
    local_day = moment.astimezone(tz).date()
    start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=tz)
    end = start.replace(hour=23, minute=59, second=59)
    return start.utcoffset() != end.utcoffset()
