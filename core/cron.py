"""Cron expressions and time zones: validation and the next fire, as pure functions of time.

A 6-field expression has the seconds first (Quartz, Spring, node-cron): ``*/2 * * * * *`` is
every two seconds. Expressions are evaluated in the reminder's own IANA time zone on local
wall-clock time, and the result is returned in UTC.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter

from core.cron_checks import check_fields
from core.cron_fast import next_fire_fast
from core.exceptions import InvalidSchedule as InvalidSchedule
from core.states import DstGap, DstRepeated
from core.zones import zone as zone

MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})


# croniter reads a range with equal ends ("0-0", "MON-MON/2") as the whole field; cron means the
# single value, so such ranges are rewritten before croniter ever sees them.
_EQUAL_RANGE = re.compile(r"^(\w+)-(\w+)(/\d+)?$")


def has_seconds(expression: str) -> bool:
    """Whether the expression carries a leading seconds field."""
    return len(expression.split()) == 6


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
    # Cheap and certain refusals first: a never-firing expression costs croniter milliseconds.
    try:
        check_fields(fields, _days_or(normalized))
    except InvalidSchedule as exc:
        raise InvalidSchedule(f"cron expression {normalized!r}: {exc}") from None
    try:
        itr = croniter(
            normalized,
            datetime(2000, 1, 1, tzinfo=UTC),
            second_at_beginning=len(fields) == 6,
            day_or=_days_or(normalized),
        )
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


def _days_or(expression: str) -> bool:
    """Whether a day matching either day-of-month or day-of-week fires (cron's OR rule).

    Vixie cron, and so Debian's, ORs the two only when both are restricted, and a field starting
    with ``*`` (``*/2`` too) counts as unrestricted; croniter would OR ``*/2`` with a weekday.
    """
    fields = expression.split()
    if len(fields) < 5:
        return True
    day, weekday = fields[-3], fields[-1]
    return not (day.startswith(("*", "?")) or weekday.startswith(("*", "?")))


def _second_pass_of_repeated_hour(moment: datetime, tz: ZoneInfo) -> bool:
    local = moment.astimezone(tz)
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


# The widest offset change in the tz database is under 3 hours (most are 1 hour, Lord Howe's 30 min).
_MAX_SHIFT = timedelta(hours=3)


def next_fire(
    expression: str,
    timezone: str,
    after: datetime,
    *,
    gap: DstGap = DstGap.SHIFT,
    repeated: DstRepeated = DstRepeated.FIRST,
) -> datetime:
    """The first fire strictly after ``after`` (aware), in UTC.

    ``gap``: a fire whose local time a clock change skips goes out right after the jump (``shift``)
    or not at all (``skip``). ``repeated``: a fixed-time fire in a repeated local hour goes out
    once, in the first pass (``first``), or in both passes (``both``).
    """
    # Keyed in UTC: the two passes of a repeated local hour compare (and hash) equal in one zone.
    return _next_fire_utc(expression, timezone, after.astimezone(UTC), gap, repeated)


@lru_cache(maxsize=16_384)
def _next_fire_utc(
    expression: str, timezone: str, after: datetime, gap: DstGap, repeated: DstRepeated
) -> datetime:
    """Memoized: rows that share (expression, zone, previous fire) share one computation, which
    is what makes a burst of identical schedules cheap."""
    # The fast path answers only where it gives croniter's answer (no clock change near, so the
    # DST policies have nothing to decide); a burst of distinct schedules is why it exists.
    fast = next_fire_fast(expression, zone(timezone), after)
    if fast is not None:
        return fast
    return _next_fire_croniter(expression, timezone, after, gap, repeated)


def _next_fire_croniter(
    expression: str, timezone: str, after: datetime, gap: DstGap, repeated: DstRepeated
) -> datetime:
    """The next fire as croniter and the DST policies define it: the reference for the fast path."""
    tz = zone(timezone)
    if not expression.startswith("@"):
        expression = " ".join(_collapse_fields(expression.split()))
    fixed = _fixed_time(expression)
    both_passes = fixed and repeated == DstRepeated.BOTH
    itr = _reused_iterator(expression, after.astimezone(tz))
    # Around a DST fold the local iterator can hand back an instant that is not later in UTC, and
    # a fixed-time expression may skip a whole repeated hour of candidates (3,600 at most).
    for _ in range(4000):
        candidate: datetime = itr.get_next(datetime).astimezone(UTC)
        if candidate <= after:
            continue
        # A fixed-time fire in a repeated hour fires once, in the first pass (as Debian's cron
        # does), unless both passes are asked for; wildcard and interval expressions keep firing
        # through both passes.
        if fixed and not both_passes and _second_pass_of_repeated_hour(candidate, tz):
            continue
        if gap == DstGap.SKIP and not _matches_wall(
            expression, candidate.astimezone(tz).replace(tzinfo=None)
        ):
            continue  # croniter moved a fire out of a skipped local hour
        break
    else:
        raise InvalidSchedule(f"cron expression {expression!r} does not advance after {after.isoformat()}")
    if both_passes:
        twin = _second_pass_after(expression, tz, after)
        if twin is not None and twin < candidate:
            return twin
    return candidate


# Parsed iterators by expression, one set per thread (they are stateful). Parsing is most of a
# croniter's cost: a reused one moved to a new start costs about a quarter of a fresh one, which
# is what a burst of distinct schedules needs.
_PARSED = threading.local()
_PARSED_MAX = 1024


def _reused_iterator(expression: str, start: datetime) -> croniter:
    cache: dict[str, croniter] | None = getattr(_PARSED, "iterators", None)
    if cache is None:
        cache = _PARSED.iterators = {}
    itr = cache.get(expression)
    if itr is None:
        if len(cache) >= _PARSED_MAX:
            cache.clear()  # crude, but bounded; a working set this large defeats any cache anyway
        itr = cache[expression] = _local_iterator(expression, start)
    else:
        itr.set_current(start, force=True)
    return itr


def _local_iterator(expression: str, start: datetime) -> croniter:
    return croniter(
        expression, start, second_at_beginning=has_seconds(expression), day_or=_days_or(expression)
    )


def _matches_wall(expression: str, wall: datetime) -> bool:
    """Whether the naive local wall time is one the expression names (no clock change applied)."""
    following: datetime = _local_iterator(expression, wall - timedelta(seconds=1)).get_next(datetime)
    return following == wall


def _second_pass_after(expression: str, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The earliest second pass, strictly after ``after``, of a fire in a repeated local hour.

    The local iterator only ever names the first pass; its twin is the same wall time one offset
    change later, so the first passes at most ``_MAX_SHIFT`` before ``after`` are looked at.
    """
    if _offset_at(after - _MAX_SHIFT, tz) <= _offset_at(after + _MAX_SHIFT, tz):
        return None  # no clock goes back around here: nothing is repeated
    itr = _local_iterator(expression, (after - _MAX_SHIFT).astimezone(tz))
    for _ in range(4 * 3600):
        first: datetime = itr.get_next(datetime)
        if first.astimezone(UTC) > after:
            return None  # its twin, and every later one, comes after the first pass's own fire
        local = first.astimezone(tz)
        if local.fold == 0 and local.replace(fold=1).utcoffset() != local.utcoffset():
            twin = local.replace(fold=1).astimezone(UTC)
            if twin > after:
                return twin
    return None


def _offset_at(moment: datetime, tz: ZoneInfo) -> timedelta:
    """The zone's UTC offset at an instant."""
    result = moment.astimezone(tz).utcoffset()
    assert result is not None
    return result


def upcoming(
    expression: str,
    timezone: str,
    after: datetime,
    count: int,
    *,
    gap: DstGap = DstGap.SHIFT,
    repeated: DstRepeated = DstRepeated.FIRST,
) -> list[datetime]:
    """The next ``count`` fires strictly after ``after``, in UTC."""
    fires: list[datetime] = []
    current = after
    for _ in range(count):
        current = next_fire(expression, timezone, current, gap=gap, repeated=repeated)
        fires.append(current)
    return fires


def on_transition_day(moment: datetime, timezone: str) -> bool:
    """Whether the local calendar day of ``moment`` has a UTC-offset change (a DST switch)."""
    tz = zone(timezone)
    local_day = moment.astimezone(tz).date()
    start = datetime(local_day.year, local_day.month, local_day.day, tzinfo=tz)
    end = start.replace(hour=23, minute=59, second=59)
    return start.utcoffset() != end.utcoffset()
