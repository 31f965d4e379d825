"""Property tests of core.cron.next_fire over random cron expressions, zones and instants.

Expressions are built from the 5 standard fields (and, for 6-field ones, a leading seconds
field, as the service uses them). Starts are either uniform over 2000-2040 or within a few hours of
one of the zone's UTC-offset changes, where DST bugs live.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from croniter import croniter
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st

from core.cron import next_fire, validate_cron

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "Africa/Casablanca",
    "Europe/London",
    "Asia/Tokyo",
    "America/St_Johns",
    "Pacific/Apia",
    "Asia/Kathmandu",
    "Europe/Moscow",
    "America/Los_Angeles",
]

START_MIN = datetime(2000, 1, 1, tzinfo=UTC)
START_MAX = datetime(2040, 1, 1, tzinfo=UTC)

# Several fires per example; modest example counts keep the whole file to a few seconds.
SETTINGS = settings(
    max_examples=200,
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


# --- time zones and their offset changes --------------------------------------------------------


def offset(moment: datetime, tz: ZoneInfo) -> timedelta:
    result = moment.astimezone(tz).utcoffset()
    assert result is not None
    return result


@cache
def transitions(name: str) -> list[datetime]:
    """Every instant in [START_MIN, START_MAX] at which the zone's UTC offset changes (to the second)."""
    tz = ZoneInfo(name)
    found: list[datetime] = []
    step = timedelta(days=5)
    lo = START_MIN
    while lo < START_MAX:
        hi = lo + step
        if offset(lo, tz) != offset(hi, tz):
            a, b = lo, hi  # offset(a) != offset(b): bisect down to one second
            while b - a > timedelta(seconds=1):
                mid = a + (b - a) / 2
                if offset(mid, tz) == offset(a, tz):
                    a = mid
                else:
                    b = mid
            found.append(b.replace(microsecond=0))
        lo = hi
    return found


def near_transition(moment: datetime, tz: ZoneInfo, window: timedelta = timedelta(hours=1)) -> bool:
    """Whether the zone's offset changes within ``window`` of ``moment``."""
    return offset(moment - window, tz) != offset(moment + window, tz)


def unambiguous_utc(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The single instant with this local wall time, or None if it is skipped or repeated."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return first if first == second else None


UNIFORM_STARTS = st.datetimes(
    min_value=START_MIN.replace(tzinfo=None),
    max_value=START_MAX.replace(tzinfo=None),
    timezones=st.just(UTC),
)
NEAR = st.integers(-3 * 3600 * 1000, 3 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))


@cache
def starts_in(name: str) -> st.SearchStrategy[datetime]:
    """Uniform starts, or starts within three hours of one of the zone's offset changes."""
    changes = transitions(name)
    if not changes:
        return UNIFORM_STARTS
    around_change = st.builds(lambda at, delta: at + delta, st.sampled_from(changes), NEAR)
    return st.one_of(UNIFORM_STARTS, around_change)


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
    """croniter's own expansion of the day fields (None: any), so its day rules are the reference.

    Except one: croniter reads an equal-ended range ("0-0") as the whole field; cron, and we,
    read it as the single value.
    """
    day, month, weekday = (single_value_ranges(f) for f in (day, month, weekday))
    expanded = croniter(f"* * {day} {month} {weekday}").expanded
    sets = tuple(None if values == ["*"] else frozenset(int(v) for v in values) for values in expanded[2:5])
    dom, months, dow = sets
    return dom, months, None if dow is None else frozenset(v % 7 for v in dow)


def day_matches(cron: Cron, day: date) -> bool:
    """Day-of-month / month / weekday; when both day fields are restricted, either may match (OR)."""
    dom, months, dow = day_sets(cron.day, cron.month, cron.weekday)
    if months is not None and day.month not in months:
        return False
    dom_ok = dom is None or day.day in dom
    dow_ok = dow is None or day.isoweekday() % 7 in dow
    if dom is not None and dow is not None:
        return dom_ok or dow_ok
    return dom_ok and dow_ok


def wall_matches(cron: Cron, wall: datetime) -> bool:
    return (
        wall.second in (expand(cron.seconds, 0, 59) if cron.seconds is not None else {0})
        and wall.microsecond == 0
        and wall.minute in expand(cron.minute, 0, 59)
        and wall.hour in expand(cron.hour, 0, 23)
        and wall.month in expand(cron.month, 1, 12)
        and day_matches(cron, wall.date())
    )


def first_unambiguous_fire(cron: Cron, tz: ZoneInfo, start: datetime) -> datetime | None:
    """Brute force: the first matching local wall time that names one instant, strictly after start."""
    seconds = sorted(expand(cron.seconds, 0, 59)) if cron.seconds is not None else [0]
    minutes = sorted(expand(cron.minute, 0, 59))
    hours = sorted(expand(cron.hour, 0, 23))
    # A later instant can have an earlier wall time only after an offset decrease (at most 3 h here).
    floor = start.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
    day = floor.date()
    for _ in range(2 * 366):
        if day_matches(cron, day):
            for hour in hours:
                if datetime.combine(day, time(hour, 59, 59)) < floor:
                    continue
                for minute in minutes:
                    if datetime.combine(day, time(hour, minute, 59)) < floor:
                        continue
                    for second in seconds:
                        instant = unambiguous_utc(datetime.combine(day, time(hour, minute, second)), tz)
                        if instant is not None and instant > start:
                            return instant
        day += timedelta(days=1)
    return None


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

DST_EXAMPLES = [
    (DAILY_0230, BERLIN_SPRING),
    (DAILY_0230, BERLIN_AUTUMN),
    (DAILY_0230, LORD_HOWE_SPRING),
    (NOON, APIA_SKIPPED_DAY),
]
RANGE_EXAMPLES = [(MINUTE_0_0, UTC_2000), (HOUR_9_9, UTC_2000), (SECOND_0_0, UTC_2000)]


PropertyFn = TypeVar("PropertyFn", bound=Callable[..., None])


def with_examples(cases: list[tuple[Cron, tuple[str, datetime]]]) -> Callable[[PropertyFn], PropertyFn]:
    """Decorate a property with explicit examples (each a cron and a (zone, start) pair)."""

    def decorate(test: PropertyFn) -> PropertyFn:
        for cron, where in reversed(cases):
            test = example(cron=cron, where=where)(test)
        return test

    return decorate


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
def test_generated_expressions_are_valid(cron: Cron, where: tuple[str, datetime]) -> None:
    del where
    normalized = validate_cron(cron.expression)
    assert validate_cron(normalized) == normalized
    assert normalized.split(" ")[0] == cron.expression.split(" ")[0] or "-" in cron.expression


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(DST_EXAMPLES + RANGE_EXAMPLES)
def test_next_fire_is_strictly_after_start_and_utc(cron: Cron, where: tuple[str, datetime]) -> None:
    name, start = where
    result = next_fire(cron.expression, name, start)
    assert result > start
    assert result.utcoffset() == timedelta(0)
    assert result.microsecond == 0


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(DST_EXAMPLES + RANGE_EXAMPLES)
def test_successive_fires_strictly_increase(cron: Cron, where: tuple[str, datetime]) -> None:
    name, start = where
    fires = [start]
    for _ in range(5):
        fires.append(next_fire(cron.expression, name, fires[-1]))
    note(f"fires: {[f.isoformat() for f in fires]}")
    assert all(a < b for a, b in pairwise(fires))


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(DST_EXAMPLES + RANGE_EXAMPLES)
def test_fires_match_the_expression_in_local_wall_time(cron: Cron, where: tuple[str, datetime]) -> None:
    name, start = where
    tz = ZoneInfo(name)
    moment = start
    for _ in range(5):
        moment = next_fire(cron.expression, name, moment)
        if near_transition(moment, tz):
            continue  # inside a DST change, a skipped wall time may legitimately be moved
        wall = moment.astimezone(tz).replace(tzinfo=None)
        note(f"fire {moment.isoformat()} is local {wall.isoformat()} in {name}")
        assert wall.minute in expand(cron.minute, 0, 59)
        assert wall.hour in expand(cron.hour, 0, 23)
        assert wall_matches(cron, wall)
        assert croniter.match(
            " ".join(map(single_value_ranges, cron.expression.split())),
            wall,
            second_at_beginning=cron.seconds is not None,
        )


@SETTINGS
@given(cron=crons(), where=zones_and_starts())
@with_examples(DST_EXAMPLES + RANGE_EXAMPLES)
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
@with_examples(DST_EXAMPLES)
def test_next_fire_is_memoized_and_stable(cron: Cron, where: tuple[str, datetime]) -> None:
    name, start = where
    first = next_fire(cron.expression, name, start)
    assert next_fire(cron.expression, name, start) == first
    assert next_fire(cron.expression, name, start.astimezone(ZoneInfo("Asia/Tokyo"))) == first


def test_transition_finder_sees_known_changes() -> None:
    berlin = transitions("Europe/Berlin")
    assert datetime(2024, 3, 31, 1, tzinfo=UTC) in berlin
    assert datetime(2024, 10, 27, 1, tzinfo=UTC) in berlin
    assert transitions("UTC") == []
    # Samoa skipped 2011-12-30 entirely.
    apia = transitions("Pacific/Apia")
    index = bisect_left(apia, datetime(2011, 12, 1, tzinfo=UTC))
    assert apia[index] == datetime(2011, 12, 30, 10, tzinfo=UTC)
