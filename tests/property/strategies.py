"""Shared pieces of the property tests: example counts, start instants and the zones' offset changes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

START_MIN = datetime(2000, 1, 1, tzinfo=UTC)
START_MAX = datetime(2040, 1, 1, tzinfo=UTC)
# Offset changes are looked up around fires too: a day before the first start, and 20 yearly fires
# from 2040 reach past 2060.
TRANSITIONS_FROM = datetime(1999, 1, 1, tzinfo=UTC)
TRANSITIONS_UNTIL = datetime(2075, 1, 1, tzinfo=UTC)
# Shorter than the shortest time between two offset changes of any zone in [1999, 2075) (6.96 days:
# America/Boa_Vista's one-week DST of October 2000), so no change and its undoing fall in one step.
# A scan with this step finds all ~33,000 changes of ~600 zones in about two seconds.
SCAN_STEP = timedelta(days=6)


def examples_from_env(variable: str, default: int = 2000) -> int:
    """The example count per property: ``variable`` if set, else what CI runs."""
    return int(os.environ.get(variable, str(default)))


def offset(moment: datetime, tz: ZoneInfo) -> timedelta:
    """The zone's UTC offset at an instant."""
    result = moment.astimezone(tz).utcoffset()
    assert result is not None
    return result


def scan_transitions(name: str, step: timedelta = SCAN_STEP) -> tuple[datetime, ...]:
    """Every instant in [1999, 2075) at which the zone's UTC offset changes, to the second.

    Compares the offsets ``step`` apart, then bisects each step whose ends differ; on integer
    timestamps, as this runs for every zone.
    """
    tz = ZoneInfo(name)

    def at(timestamp: int) -> timedelta | None:
        return datetime.fromtimestamp(timestamp, tz).utcoffset()

    found: list[datetime] = []
    seconds = int(step.total_seconds())
    lo, end = int(TRANSITIONS_FROM.timestamp()), int(TRANSITIONS_UNTIL.timestamp())
    before = at(lo)
    while lo < end:
        hi = lo + seconds
        after = at(hi)
        if after != before:
            a, b = lo, hi  # at(a) == before != at(b): bisect down to one second
            while b - a > 1:
                mid = (a + b) // 2
                if at(mid) == before:
                    a = mid
                else:
                    b = mid
            found.append(datetime.fromtimestamp(b, UTC))
        lo, before = hi, after
    return tuple(found)


@cache
def transitions(name: str) -> tuple[datetime, ...]:
    """The zone's offset changes in [1999, 2075), computed on first use."""
    return scan_transitions(name)


UTC_STARTS = st.datetimes(
    min_value=START_MIN.replace(tzinfo=None),
    max_value=START_MAX.replace(tzinfo=None),
    timezones=st.just(UTC),
)


# --- the full cron grammar of core.cron_fast, and starts dense around offset changes ----------------

MONTH_NAMES = tuple("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())
WEEKDAY_NAMES = tuple("SUN MON TUE WED THU FRI SAT".split())
# The names of a field's values from its first (months, weekdays), or None.
Names = tuple[str, ...] | None

# The strategy builders below are cached: building a strategy anew on every draw (and Hypothesis
# validating it) was two thirds of test_cron_fast's time. A strategy is immutable, so one object
# per argument set draws exactly what a fresh one would.


@cache
def spelled(value: int, names: Names, first: int) -> st.SearchStrategy[str]:
    """A value as a number or, where it has one, its name in any letter case (7, Sunday too, has none)."""
    if names is None or not 0 <= value - first < len(names):
        return st.just(str(value))
    name = names[value - first]
    return st.sampled_from([str(value), name, name.lower(), name.title()])


@cache
def cron_items(lo: int, hi: int, names: Names = None, first: int = 0) -> st.SearchStrategy[str]:
    """One list item: ``n``, ``a-b``, ``a-b/k``, ``a/k`` or ``*/k``; ranges mostly ascending,
    sometimes wrapping (``FRI-MON``, step 1 only) or equal-ended (``5-5``, ``5-5/2``: the value)."""
    value = st.integers(lo, hi)
    step = st.integers(1, hi - lo + 1).map(str)
    ascending = st.tuples(value, value).map(sorted)
    wrapping = st.tuples(value, value).filter(lambda ab: ab[0] > ab[1])

    def spell_range(ab: tuple[int, int] | list[int]) -> st.SearchStrategy[str]:
        return st.tuples(spelled(ab[0], names, first), spelled(ab[1], names, first)).map("-".join)

    ranges = ascending.flatmap(spell_range)
    return st.one_of(
        value.flatmap(lambda v: spelled(v, names, first)),
        ranges,
        st.tuples(ranges, step).map("/".join),
        st.tuples(value.flatmap(lambda v: spelled(v, names, first)), step).map("/".join),
        step.map(lambda k: f"*/{k}"),
        wrapping.flatmap(spell_range),
    )


@cache
def cron_field(lo: int, hi: int, names: Names = None, first: int = 0) -> st.SearchStrategy[str]:
    """A whole field: ``*`` or a list of one to four items."""
    return st.one_of(
        st.just("*"),
        st.lists(cron_items(lo, hi, names, first), min_size=1, max_size=4).map(",".join),
    )


@st.composite
def cron_expressions(draw: st.DrawFn) -> str:
    """A 5- or 6-field (seconds first) expression over the whole grammar: days up to 31, so some
    never fire (30 February) and some fire rarely; weekdays up to 7, Sunday again."""
    parts = [
        draw(cron_field(0, 59)),
        draw(cron_field(0, 23)),
        draw(st.one_of(cron_field(1, 28), cron_field(1, 31))),
        draw(cron_field(1, 12, MONTH_NAMES, first=1)),
        draw(cron_field(0, 7, WEEKDAY_NAMES)),
    ]
    if draw(st.booleans()):
        parts.insert(0, draw(cron_field(0, 59)))
    return " ".join(parts)


# Within days of a change, so a fire's search (to the next matching day, week, month) crosses it.
WIDE_NEAR = st.integers(-10 * 86_400, 10 * 86_400).map(lambda s: timedelta(seconds=s))
CLOSE_NEAR = st.integers(-4 * 3600 * 1000, 4 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))


@cache
def starts_around_changes(name: str) -> st.SearchStrategy[datetime]:
    """Instants over [2000, 2040): uniform, or within hours or days of one of the zone's offset
    changes, given in UTC or in the zone (either fold, a skipped or repeated wall time too)."""
    tz = ZoneInfo(name)
    changes = tuple(c for c in transitions(name) if START_MIN <= c <= START_MAX)

    def local(moment: datetime, fold: int) -> datetime:
        return moment.astimezone(tz).replace(fold=fold)

    def wall(moment: datetime, fold: int) -> datetime:
        # The wall clock read with the old offset, shifted: a skipped or a repeated wall time.
        return (moment + offset(moment - timedelta(seconds=1), tz)).replace(tzinfo=tz, fold=fold)

    folds = st.sampled_from([0, 1])
    uniform = st.one_of(UTC_STARTS, st.builds(local, UTC_STARTS, folds))
    if not changes:
        return uniform
    change = st.sampled_from(changes)
    near = st.builds(lambda at, delta: at + delta, change, st.one_of(CLOSE_NEAR, WIDE_NEAR))
    return st.one_of(uniform, near, st.builds(local, near, folds), st.builds(wall, near, folds))


@st.composite
def any_zone_and_start(draw: st.DrawFn, zones: tuple[str, ...]) -> tuple[str, datetime]:
    """A zone from ``zones`` and a start from starts_around_changes."""
    name = draw(st.sampled_from(zones))
    return name, draw(starts_around_changes(name))


@st.composite
def fixed_times_near_changes(draw: st.DrawFn, zones: tuple[str, ...]) -> tuple[str, str, datetime]:
    """A zone, a start within two hours of one of its offset changes, and a daily (or, 6-field,
    per-second-listed) expression whose time of day falls within two hours of that change's wall
    time: the fire itself lands in or next to a skipped or repeated stretch."""
    name = draw(st.sampled_from(zones))
    changes = tuple(c for c in transitions(name) if START_MIN <= c <= START_MAX)
    tz = ZoneInfo(name)
    if not changes:
        return name, "0 0 * * *", draw(UTC_STARTS)
    change = draw(st.sampled_from(changes))
    start = change + draw(st.integers(-2 * 3600, 2 * 3600).map(lambda s: timedelta(seconds=s)))
    wall = (change + offset(change - timedelta(seconds=1), tz)).replace(tzinfo=None)
    fire = wall + draw(st.integers(-2 * 3600, 2 * 3600).map(lambda s: timedelta(seconds=s)))
    if draw(st.booleans()):
        expression = f"{fire.second} {fire.minute} {fire.hour} * * *"
    else:
        expression = f"{fire.minute} {fire.hour} * * *"
    return name, expression, start
