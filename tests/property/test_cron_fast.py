"""Property tests of core.cron_fast: where the fast path answers, it gives croniter's answer.

The reference is core.cron's croniter path called directly (``_next_fire_croniter``: no fast path,
no memo). Expressions cover the fast path's whole grammar (tests/property/strategies.py), zones
are every zone the tz database has, starts are instants over 2000-2040, uniform or within hours or
days of one of the zone's offset changes, with both DST policies.

The fast path may only decline near an offset change; away from one it must answer, so these
properties cannot pass by the fast path always falling back.

Example counts come from ``PROPERTY_EXAMPLES`` (default 2000 per property, what CI runs).
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, datetime, timedelta

from croniter import CroniterError
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st

from core.cron import (
    InvalidSchedule,
    _next_fire_croniter,
    zone,
)
from core.cron_fast import next_fire_fast
from core.states import DstGap, DstRepeated
from core.zones import zone_names
from tests.property.strategies import (
    any_zone_and_start,
    cron_expressions,
    examples_from_env,
    fixed_times_near_changes,
    transitions,
)

ZONES = tuple(sorted(zone_names()))  # the zones the service accepts
FIXED_ZONES = ("UTC", "Asia/Kolkata", "Asia/Tokyo", "Asia/Kathmandu", "Etc/GMT+5")

SETTINGS = settings(
    max_examples=examples_from_env("PROPERTY_EXAMPLES"),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# The fast path searches about five years ahead; a rarer fire (Friday 13 February) may go to croniter.
SEARCHED = timedelta(days=4 * 365)
# Away from every offset change by this much, the fast path has no reason to decline (a change of
# the offset by a whole day, Samoa's in 2011, can reach a wall time from about a day away).
CLEAR = timedelta(days=1, hours=3)


def reference(
    expression: str, name: str, after: datetime, gap: DstGap, repeated: DstRepeated
) -> datetime | None:
    """croniter's answer, or None where it finds no fire (30 February)."""
    try:
        return _next_fire_croniter(expression, name, after, gap, repeated)
    except (CroniterError, InvalidSchedule):
        return None


def clear_of_changes(name: str, start: datetime, end: datetime) -> bool:
    """Whether none of the zone's offset changes falls within CLEAR of [start, end]."""
    changes = transitions(name)
    index = bisect_left(changes, start - CLEAR)
    return index == len(changes) or changes[index] > end + CLEAR


def check(
    expression: str, where: tuple[str, datetime], gap: DstGap, repeated: DstRepeated
) -> tuple[datetime | None, datetime | None]:
    """The fast path's answer and croniter's, after checking the one against the other."""
    name, start = where
    after = start.astimezone(UTC)
    fast = next_fire_fast(expression, zone(name), after)
    expected = reference(expression, name, after, gap, repeated)
    note(f"{expression!r} in {name} after {after.isoformat()}: fast {fast} croniter {expected}")
    if fast is not None:
        assert fast == expected
    elif expected is not None and expected - after < SEARCHED and clear_of_changes(name, after, expected):
        raise AssertionError("the fast path declined away from any offset change")
    event("fast path answered" if fast is not None else "fell back")
    return fast, expected


POLICIES = st.tuples(st.sampled_from(DstGap), st.sampled_from(DstRepeated))


@SETTINGS
@given(expression=cron_expressions(), where=any_zone_and_start(ZONES), policies=POLICIES)
@example(
    expression="30 2 * * *",
    where=("Europe/Berlin", datetime(2024, 3, 30, 3, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
@example(
    expression="30 2 * * *",
    where=("Europe/Berlin", datetime(2024, 10, 26, 3, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.BOTH),
)
@example(
    expression="0 0 13 * 5",
    where=("UTC", datetime(2024, 1, 1, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
@example(
    expression="0 0 */2 * 1",
    where=("UTC", datetime(2024, 1, 1, tzinfo=UTC)),
    policies=(DstGap.SKIP, DstRepeated.FIRST),
)
@example(
    expression="0 0 1-31 * 1",
    where=("UTC", datetime(2024, 1, 2, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
@example(
    expression="0 0 1,*/2 * 0-6",
    where=("UTC", datetime(2024, 1, 2, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
@example(
    expression="5 4 3 * * 7",
    where=("Asia/Tokyo", datetime(2039, 12, 31, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
@example(
    expression="0 12 * * 3-7/2",
    where=("UTC", datetime(2024, 1, 1, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
@example(
    expression="45 23 * * *",
    where=("Pacific/Apia", datetime(2011, 12, 29, 9, 50, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
@example(
    expression="0 0 30 2 *",
    where=("UTC", datetime(2024, 1, 1, tzinfo=UTC)),
    policies=(DstGap.SHIFT, DstRepeated.FIRST),
)
def test_fast_path_gives_croniters_answer(
    expression: str, where: tuple[str, datetime], policies: tuple[DstGap, DstRepeated]
) -> None:
    check(expression, where, *policies)


@SETTINGS
@given(expression=cron_expressions(), where=any_zone_and_start(FIXED_ZONES), policies=POLICIES)
def test_fast_path_answers_in_zones_without_changes(
    expression: str, where: tuple[str, datetime], policies: tuple[DstGap, DstRepeated]
) -> None:
    """No offset change since 1999: every fire within the search reach comes from the fast path."""
    fast, expected = check(expression, where, *policies)
    if expected is not None and expected - where[1] < SEARCHED:
        assert fast is not None


@SETTINGS
@given(case=fixed_times_near_changes(ZONES), policies=POLICIES)
def test_fast_path_around_fires_in_skipped_or_repeated_hours(
    case: tuple[str, str, datetime], policies: tuple[DstGap, DstRepeated]
) -> None:
    """Where the DST policies decide: a named time of day next to an offset change, from a start
    next to it (uniform starts rarely meet one)."""
    name, expression, start = case
    check(expression, (name, start), *policies)
