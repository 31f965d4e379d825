"""Property tests of core.cron.next_fire over random cron expressions, zones and instants.

Expressions are built from the 5 standard fields (and, for 6-field ones, a leading seconds
field, as the service uses them). Zones are every zone the tz database has. Starts are instants over
2000-2040, given in UTC or as a local wall time of the zone with either fold (a repeated or skipped
wall time too), uniform or within a few hours of one of the zone's UTC-offset changes, where DST
bugs live.

Example counts come from ``PROPERTY_EXAMPLES`` (default 2000 per property, what CI runs).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from core.cron import next_fire, validate_cron
from core.states import DstGap, DstRepeated
from core.zones import zone_names
from tests.property.strategies import (
    START_MAX,
    START_MIN,
    UTC_STARTS,
    examples_from_env,
    offset,
    scan_transitions,
    transitions,
)

# Sorted: the zone a given draw picks must not depend on set order (hash seeds).
ZONES = sorted(zone_names())  # the zones the service accepts

# The widest drop of any zone's offset in the tz database since 1999 (Antarctica/Casey, 2010).
MAX_SHIFT_BACK = timedelta(hours=3)

SETTINGS = settings(
    max_examples=examples_from_env("PROPERTY_EXAMPLES"),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- cron expressions -----------------------------------------------------------------------------


def field(lo: int, hi: int) -> st.SearchStrategy[str]:
    """One cron field over [lo, hi]: ``*``, ``n``, ``*/k``, ``a-b``, ``a-b/k`` or a list ``a,b,c``."""
    value = st.integers(lo, hi)
    span = st.tuples(value, value).map(sorted)
    return st.one_of(
        st.just("*"),
        value.map(str),
        st.integers(1, hi - lo + 1).map(lambda k: f"*/{k}"),
        span.map(lambda ab: f"{ab[0]}-{ab[1]}"),
        st.tuples(span, st.integers(1, hi - lo + 1)).map(lambda t: f"{t[0][0]}-{t[0][1]}/{t[1]}"),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda xs: ",".join(map(str, xs))),
    )


class Cron(NamedTuple):
    expression: str
    seconds: str | None  # None for 5-field expressions (fires at second 0)
    minute: str
    hour: str
    day: str
    month: str
    weekday: str


SECONDS = st.one_of(st.none(), field(0, 59))
MINUTES = field(0, 59)
HOURS = field(0, 23)
DAYS = field(1, 28)  # every month has these days: the expression always fires
MONTHS = field(1, 12)
WEEKDAYS = field(0, 6)


@st.composite
def crons(draw: st.DrawFn) -> Cron:
    seconds = draw(SECONDS)
    minute = draw(MINUTES)
    hour = draw(HOURS)
    day = draw(DAYS)
    month = draw(MONTHS)
    weekday = draw(WEEKDAYS)
    parts = [minute, hour, day, month, weekday]
    if seconds is not None:
        parts.insert(0, seconds)
    return Cron(" ".join(parts), seconds, minute, hour, day, month, weekday)


def expand(text: str, lo: int, hi: int) -> frozenset[int]:
    """The values a field (as generated above) allows."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            first, last = (int(x) for x in base.split("-"))
        else:
            first = last = int(base)
        values.update(range(first, last + 1, int(step) if step else 1))
    return frozenset(values)


# --- time zones and starts -------------------------------------------------------------------------


def near_transition(moment: datetime, tz: ZoneInfo, window: timedelta = timedelta(hours=1)) -> bool:
    """Whether the zone's offset changes within ``window`` of ``moment``."""
    return offset(moment - window, tz) != offset(moment + window, tz)


def unambiguous_utc(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The single instant with this local wall time, or None if it is skipped or repeated."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return first if first == second else None


def local_wall(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


WALL_TIMES = st.datetimes(min_value=START_MIN.replace(tzinfo=None), max_value=START_MAX.replace(tzinfo=None))
FOLDS = st.sampled_from([0, 1])
NEAR = st.integers(-3 * 3600 * 1000, 3 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))


@cache
def changes_in_start_range(name: str) -> tuple[datetime, ...]:
    changes = transitions(name)
    return changes[bisect_left(changes, START_MIN) : bisect_right(changes, START_MAX)]


@cache
def starts_in(name: str) -> st.SearchStrategy[datetime]:
    """Instants in UTC or local wall times (either fold), uniform or within three hours of an offset change.

    Built on the zone's first draw: finding its offset changes is the costly part.
    """
    tz = ZoneInfo(name)

    def localize(wall: datetime, fold: int) -> datetime:
        # A skipped wall time is a valid aware datetime too: the fold picks the offset it is read with.
        return wall.replace(tzinfo=tz, fold=fold)

    def wall_near(change: datetime, delta: timedelta) -> datetime:
        # The wall clock as the change arrives, still on the old offset: a gap starts there and a
        # repeated stretch ends there, so +-3 h of wall time covers both.
        return (change + offset(change - timedelta(seconds=1), tz)).replace(tzinfo=None) + delta

    uniform_local = st.builds(localize, WALL_TIMES, FOLDS)
    changes = changes_in_start_range(name)
    if not changes:
        return st.one_of(UTC_STARTS, uniform_local)
    change = st.sampled_from(changes)
    near_utc = st.builds(lambda at, delta: at + delta, change, NEAR)
    near_local = st.builds(localize, st.builds(wall_near, change, NEAR), FOLDS)
    return st.one_of(UTC_STARTS, uniform_local, near_utc, near_local)


@st.composite
def zones_and_starts(draw: st.DrawFn) -> tuple[str, datetime]:
    name = draw(st.sampled_from(ZONES))
    return name, draw(starts_in(name))


# --- checks ---------------------------------------------------------------------------------------


def single_value_ranges(field: str) -> str:
    """Rewrite equal-ended ranges ("0-0", "1-1/2") to the single value, as cron reads them."""
    return ",".join(
        re.sub(r"^(\w+)-\1(/\d+)?$", r"\1", item, flags=re.IGNORECASE) for item in field.split(",")
    )


@cache
def day_sets(day: str, month: str, weekday: str) -> tuple[frozenset[int] | None, ...]:
    """croniter's own expansion of the day fields (None: any), so its field syntax is the reference.

    Except one: croniter reads an equal-ended range ("0-0") as the whole field; cron, and we,
    read it as the single value.
    """
    day, month, weekday = (single_value_ranges(f) for f in (day, month, weekday))
    expanded = croniter(f"* * {day} {month} {weekday}").expanded
    sets = tuple(None if values == ["*"] else frozenset(int(v) for v in values) for values in expanded[2:5])
    dom, months, dow = sets
    return dom, months, None if dow is None else frozenset(v % 7 for v in dow)


def days_or(cron: Cron) -> bool:
    """cron's day rule: a day matching either day field fires only when neither field starts with
    ``*`` (Vixie cron counts ``*/2`` as a star); otherwise both must match."""
    return not (cron.day.startswith("*") or cron.weekday.startswith("*"))


def day_matches(cron: Cron, day: date) -> bool:
    """Day-of-month / month / weekday, with cron's OR rule for the two day fields."""
    dom, months, dow = day_sets(cron.day, cron.month, cron.weekday)
    if months is not None and day.month not in months:
        return False
    dom_ok = dom is None or day.day in dom
    dow_ok = dow is None or day.isoweekday() % 7 in dow
    return dom_ok or dow_ok if days_or(cron) else dom_ok and dow_ok


def wall_matches(cron: Cron, wall: datetime) -> bool:
    return (
        wall.second in (expand(cron.seconds, 0, 59) if cron.seconds is not None else {0})
        and wall.microsecond == 0
        and wall.minute in expand(cron.minute, 0, 59)
        and wall.hour in expand(cron.hour, 0, 23)
        and wall.month in expand(cron.month, 1, 12)
        and day_matches(cron, wall.date())
    )


@cache
def croniter_reading(cron: Cron) -> croniter:
    """croniter's own reading of the expression (equal-ended ranges as one value, cron's day rule)."""
    return croniter(
        " ".join(map(single_value_ranges, cron.expression.split())),
        START_MIN.replace(tzinfo=None),
        day_or=days_or(cron),
        second_at_beginning=cron.seconds is not None,
    )


def croniter_matches(cron: Cron, wall: datetime) -> bool:
    """What ``croniter.match`` says of a naive wall time, without parsing the expression each time."""
    reading = croniter_reading(cron)
    reading.set_current(wall - timedelta(seconds=1), force=True)
    following: datetime = reading.get_next(datetime)
    return following == wall


def fixed_time(cron: Cron) -> bool:
    """Whether the time of day is named (``30 2``, ``0 1-3``): no ``*`` in the time fields."""
    fields = [cron.minute, cron.hour] + ([cron.seconds] if cron.seconds is not None else [])
    return all("*" not in f for f in fields)


def matching_walls(cron: Cron, since: datetime) -> Iterator[datetime]:
    """Brute force: the local wall times (naive) the expression names, from ``since`` on, in order."""
    seconds = sorted(expand(cron.seconds, 0, 59)) if cron.seconds is not None else [0]
    minutes = sorted(expand(cron.minute, 0, 59))
    hours = sorted(expand(cron.hour, 0, 23))
    day = since.date()
    # Twelve years: a day of month ANDed with a weekday in one month (Friday 13 February) can be
    # eleven years apart.
    for _ in range(12 * 366):
        if day_matches(cron, day):
            for hour in hours:
                if datetime.combine(day, time(hour, 59, 59)) < since:
                    continue
                for minute in minutes:
                    if datetime.combine(day, time(hour, minute, 59)) < since:
                        continue
                    for second in seconds:
                        wall = datetime.combine(day, time(hour, minute, second))
                        if wall >= since:
                            yield wall
        day += timedelta(days=1)


def first_unambiguous_fire(cron: Cron, tz: ZoneInfo, start: datetime) -> datetime | None:
    """Brute force: the first matching local wall time that names one instant, strictly after start."""
    # A later instant can have an earlier wall time only after an offset decrease, so without an
    # offset change around the start (none is followed by another within days) the scan starts there.
    floor = local_wall(start, tz)
    if near_transition(start, tz, MAX_SHIFT_BACK):
        floor -= MAX_SHIFT_BACK
    for wall in matching_walls(cron, floor):
        instant = unambiguous_utc(wall, tz)
        if instant is not None and instant > start:
            return instant
    return None


def is_gap_shift(cron: Cron, moment: datetime, tz: ZoneInfo) -> bool:
    """Whether ``moment`` is in the minute after the clock jumps forward over a wall time the
    expression names: where the "shift" gap policy moves that fire.

    A minute, not the instant: croniter keeps the skipped fire's second (02:20:10 goes out at
    03:00:10 in Berlin's spring night).
    """
    change = moment.replace(second=0)
    jump = offset(change, tz) - offset(change - timedelta(seconds=1), tz)
    if jump <= timedelta(0):
        return False
    wall = local_wall(change, tz)
    skipped = next(matching_walls(cron, wall - jump), None)
    return skipped is not None and skipped < wall


def second_pass(moment: datetime, tz: ZoneInfo) -> bool:
    """Whether ``moment`` is the second pass of a repeated local wall time."""
    local = moment.astimezone(tz)
    return local.fold == 1 and local.replace(fold=0).astimezone(UTC) != moment


def iterate(
    cron: Cron,
    name: str,
    start: datetime,
    count: int,
    gap: DstGap = DstGap.SHIFT,
    repeated: DstRepeated = DstRepeated.FIRST,
) -> list[datetime]:
    """The start and the next ``count`` fires after it."""
    fires = [start]
    for _ in range(count):
        fires.append(next_fire(cron.expression, name, fires[-1], gap=gap, repeated=repeated))
    note(f"{cron.expression!r} in {name} ({gap=}, {repeated=}): {[f.isoformat() for f in fires]}")
    return fires


# --- properties -----------------------------------------------------------------------------------

# Hand-picked cases run on every run, besides the random ones.
DAILY_0230 = Cron("30 2 * * *", None, "30", "2", "*", "*", "*")
BERLIN_SPRING = ("Europe/Berlin", datetime(2024, 3, 31, tzinfo=UTC))  # 02:00-03:00 local is skipped
BERLIN_AUTUMN = ("Europe/Berlin", datetime(2024, 10, 27, tzinfo=UTC))  # 02:00-03:00 local twice
LORD_HOWE_SPRING = ("Australia/Lord_Howe", datetime(2024, 10, 5, 14, tzinfo=UTC))  # half-hour change
APIA_SKIPPED_DAY = ("Pacific/Apia", datetime(2011, 12, 29, tzinfo=UTC))  # 2011-12-30 never happened
NOON = Cron("0 12 * * *", None, "0", "12", "*", "*", "*")
# Equal-bound ranges mean that single value in cron: minute 0 only, 09:00 only, second 0 only.
MINUTE_0_0 = Cron("0-0 * * * *", None, "0-0", "*", "*", "*", "*")
HOUR_9_9 = Cron("0 9-9 * * *", None, "0", "9-9", "*", "*", "*")
SECOND_0_0 = Cron("0-0 * * * * *", "0-0", "*", "*", "*", "*", "*")
UTC_2000 = ("UTC", datetime(2000, 1, 1, tzinfo=UTC))
# Local starts: the second 02:30 of Berlin's autumn night (fold=1), and 02:30 of its spring night,
# which never happens (read with the offset before the jump for fold=0, after it for fold=1).
BERLIN = ZoneInfo("Europe/Berlin")
BERLIN_SECOND_0230 = ("Europe/Berlin", datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN, fold=1))
BERLIN_SKIPPED_0230 = [("Europe/Berlin", datetime(2024, 3, 31, 2, 30, tzinfo=BERLIN, fold=f)) for f in (0, 1)]
# '*/2' in the day of month ANDs with the weekday as in cron: odd days that are Mondays.
ODD_MONDAYS = Cron("0 0 */2 * 1", None, "0", "0", "*/2", "*", "1")
UTC_2024 = ("UTC", datetime(2024, 1, 1, tzinfo=UTC))
# 02:00:01 on a Sunday the 3rd; Hobart's clocks jumped from 02:00 to 03:00 on Sunday 2004-10-03.
HOBART_0200_01 = Cron("1 0 2 3 * */7", "1", "0", "2", "3", "*", "*/7")
HOBART_SPRING = ("Australia/Hobart", datetime(2004, 9, 1, tzinfo=UTC))

DST_EXAMPLES = [
    (DAILY_0230, BERLIN_SPRING),
    (DAILY_0230, BERLIN_AUTUMN),
    (DAILY_0230, LORD_HOWE_SPRING),
    (NOON, APIA_SKIPPED_DAY),
]
RANGE_EXAMPLES = [(MINUTE_0_0, UTC_2000), (HOUR_9_9, UTC_2000), (SECOND_0_0, UTC_2000)]
LOCAL_EXAMPLES = [(DAILY_0230, BERLIN_SECOND_0230), *((DAILY_0230, where) for where in BERLIN_SKIPPED_0230)]
# Six fires in the second pass of 01:01 that the default leaves out (Baja California's 2000 fall back).
ENSENADA_0101_0_5 = Cron("0-5 1 1 * * *", "0-5", "1", "1", "*", "*", "*")
ENSENADA_SECOND_PASS = ("America/Ensenada", datetime(2000, 10, 29, 9, tzinfo=UTC))
MORE_EXAMPLES = [
    (ODD_MONDAYS, UTC_2024),
    (HOBART_0200_01, HOBART_SPRING),
    (ENSENADA_0101_0_5, ENSENADA_SECOND_PASS),
]
ALL_EXAMPLES = DST_EXAMPLES + RANGE_EXAMPLES + LOCAL_EXAMPLES + MORE_EXAMPLES


PropertyFn = TypeVar("PropertyFn", bound=Callable[..., None])


def with_examples(cases: list[tuple[Cron, tuple[str, datetime]]]) -> Callable[[PropertyFn], PropertyFn]:
    """Decorate a property with explicit examples (each a cron and a (zone, start) pair)."""

    def decorate(test: PropertyFn) -> PropertyFn:
        for cron, where in reversed(cases):
            test = example(cron=cron, where=where)(test)
        return test

    return decorate


@SETTINGS
@given(cron=crons())
def test_generated_expressions_are_valid(cron: Cron) -> None:
    normalized = validate_cron(cron.expression)
    assert validate_cron(normalized) == normalized
    assert normalized.split(" ")[0] == cron.expression.split(" ")[0] or "-" in cron.expression


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(ALL_EXAMPLES)
def test_next_fire_is_strictly_after_start_and_utc(cron: Cron, where: tuple[str, datetime]) -> None:
    name, start = where
    result = next_fire(cron.expression, name, start)
    assert result > start
    assert result.utcoffset() == timedelta(0)
    assert result.microsecond == 0


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(ALL_EXAMPLES)
def test_fires_match_the_expression_in_local_wall_time(cron: Cron, where: tuple[str, datetime]) -> None:
    name, start = where
    tz = ZoneInfo(name)
    for moment in iterate(cron, name, start, 5)[1:]:
        if near_transition(moment, tz):
            continue  # inside a DST change, a skipped wall time may legitimately be moved
        wall = local_wall(moment, tz)
        note(f"fire {moment.isoformat()} is local {wall.isoformat()} in {name}")
        assert wall.minute in expand(cron.minute, 0, 59)
        assert wall.hour in expand(cron.hour, 0, 23)
        assert wall_matches(cron, wall)
        assert croniter_matches(cron, wall)


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(ALL_EXAMPLES)
def test_fires_land_on_local_times_that_exist(cron: Cron, where: tuple[str, datetime]) -> None:
    """A fire's local wall time is one the zone's clocks show (not skipped); for a named time of day
    it is a time the expression names, unless the fire is the gap shift of a skipped one."""
    name, start = where
    tz = ZoneInfo(name)
    for moment in iterate(cron, name, start, 5)[1:]:
        local = moment.astimezone(tz)
        wall = local.replace(tzinfo=None)
        note(f"fire {moment.isoformat()} is local {wall.isoformat()} fold={local.fold} in {name}")
        # A skipped wall time, read with either fold, names an instant whose wall time differs.
        assert wall.replace(tzinfo=tz, fold=local.fold).astimezone(UTC) == moment
        if fixed_time(cron) and not is_gap_shift(cron, moment, tz):
            assert wall_matches(cron, wall)


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(ALL_EXAMPLES)
def test_next_fire_misses_no_unambiguous_fire(cron: Cron, where: tuple[str, datetime]) -> None:
    """No local wall time that matches and names a single instant lies between start and the result."""
    name, start = where
    tz = ZoneInfo(name)
    result = next_fire(cron.expression, name, start)
    expected = first_unambiguous_fire(cron, tz, start)
    note(f"result {result.isoformat()} expected {expected and expected.isoformat()}")
    assert expected is not None
    assert result <= expected
    if result < expected:
        # Only a fire moved or repeated by an offset change may come before the brute-force one.
        assert near_transition(result, tz, timedelta(hours=3))


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(ALL_EXAMPLES)
def test_iterated_fires_strictly_increase_and_miss_none(cron: Cron, where: tuple[str, datetime]) -> None:
    """Each fire is after the one before, with no unambiguous matching wall time between them."""
    name, start = where
    tz = ZoneInfo(name)
    fires = iterate(cron, name, start, 5)
    assert all(a < b for a, b in pairwise(fires))
    for previous, fire in pairwise(fires):
        expected = first_unambiguous_fire(cron, tz, previous)
        assert expected is not None
        assert fire <= expected, f"after {previous.isoformat()}: {expected.isoformat()} missed"
        if fire < expected:
            assert near_transition(fire, tz, timedelta(hours=3))


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(DST_EXAMPLES + LOCAL_EXAMPLES)
def test_next_fire_is_memoized_and_stable(cron: Cron, where: tuple[str, datetime]) -> None:
    name, start = where
    first = next_fire(cron.expression, name, start)
    assert next_fire(cron.expression, name, start) == first
    assert next_fire(cron.expression, name, start.astimezone(ZoneInfo("Asia/Tokyo"))) == first
    assert next_fire(cron.expression, name, start.astimezone(UTC)) == first


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(ALL_EXAMPLES)
def test_with_gap_skip_every_fire_matches_the_expression(cron: Cron, where: tuple[str, datetime]) -> None:
    """gap="skip": every fire is a wall time the expression names, even next to an offset change;
    the fires strictly increase, and only a repeated wall time comes before the brute-force fire."""
    name, start = where
    tz = ZoneInfo(name)
    fires = iterate(cron, name, start, 5, gap=DstGap.SKIP)
    assert all(a < b for a, b in pairwise(fires))
    for fire in fires[1:]:
        wall = local_wall(fire, tz)
        assert wall_matches(cron, wall), f"{fire.isoformat()} is local {wall.isoformat()}"
        assert croniter_matches(cron, wall)
    for previous, fire in pairwise(fires):
        expected = first_unambiguous_fire(cron, tz, previous)
        assert expected is not None
        assert fire <= expected, f"after {previous.isoformat()}: {expected.isoformat()} missed"
        if fire < expected:
            assert unambiguous_utc(local_wall(fire, tz), tz) is None


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(ALL_EXAMPLES)
def test_with_repeated_both_every_default_fire_still_fires(cron: Cron, where: tuple[str, datetime]) -> None:
    """repeated="both": the default fires and, for a named time of day, the second pass of each one
    in a repeated hour; strictly increasing."""
    name, start = where
    tz = ZoneInfo(name)
    default = iterate(cron, name, start, 5)[1:]
    both = [start]
    # Each extra fire is a second of a repeated stretch (three hours at most): the loop ends.
    most = len(default) + int(MAX_SHIFT_BACK.total_seconds()) + 1
    while both[-1] < default[-1]:
        assert len(both) <= most, "repeated='both' fires more often than the repeated stretch allows"
        both.append(next_fire(cron.expression, name, both[-1], repeated=DstRepeated.BOTH))
    note(f"repeated='both': {[f.isoformat() for f in both]}")
    assert all(a < b for a, b in pairwise(both))
    assert set(default) <= set(both)
    for extra in set(both[1:]) - set(default):
        # Only the second pass of a default fire that is a named time of day.
        assert fixed_time(cron)
        assert second_pass(extra, tz)
        first_pass = local_wall(extra, tz).replace(tzinfo=tz, fold=0).astimezone(UTC)
        assert first_pass in default or first_pass <= start


# --- the offset-change finder the strategies rely on -------------------------------------------------


def test_transition_finder_sees_known_changes() -> None:
    berlin = transitions("Europe/Berlin")
    assert datetime(2024, 3, 31, 1, tzinfo=UTC) in berlin
    assert datetime(2024, 10, 27, 1, tzinfo=UTC) in berlin
    assert transitions("UTC") == ()
    # Samoa skipped 2011-12-30 entirely.
    apia = transitions("Pacific/Apia")
    index = bisect_left(apia, datetime(2011, 12, 1, tzinfo=UTC))
    assert apia[index] == datetime(2011, 12, 30, 10, tzinfo=UTC)


def test_coarse_scan_misses_no_short_offset_period() -> None:
    """The scan's step is only safe while no offset lasts shorter than it: compare a fine scan on
    zones whose offsets changed back within weeks (one week, Ramadan suspensions)."""
    for name in ["America/Boa_Vista", "Africa/Casablanca", "Africa/Cairo", "Asia/Gaza"]:
        assert transitions(name) == scan_transitions(name, timedelta(hours=6)), name
