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
