"""Pinned regression tests: core.cron.next_fire on known DST (and offset-change) days, in exact UTC.

The rule (issue 5, Debian cron's): a fixed-time fire that falls into the skipped hour fires right
after the clock jumps; a fixed-time fire in the repeated hour fires once (the first pass);
wildcard/interval expressions keep real elapsed intervals.

Each case lists every fire in a UTC window (after, until] around the change.

A reminder's ``dst_policy`` overrides the rule: ``gap: skip`` drops a fire whose local time does not
exist, ``repeated: both`` fires a fixed time in both passes of a repeated hour (POLICY_CASES).

On Lord Howe Island the clock moves by 30 minutes, so ``0 * * * *`` (on the local hour) cannot keep
60 real minutes across the change: it stays on the local hour, 90 minutes apart (pinned as is).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.cron import next_fire
from core.states import DstGap, DstRepeated


def at(text: str) -> datetime:
    """``2024-03-31 01:00`` (UTC) to an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(
    expression: str,
    zone: str,
    after: str,
    until: str,
    gap: DstGap = DstGap.SHIFT,
    repeated: DstRepeated = DstRepeated.FIRST,
) -> list[datetime]:
    """Every fire in (after, until], in UTC."""
    found: list[datetime] = []
    moment = next_fire(expression, zone, at(after), gap=gap, repeated=repeated)
    while moment <= at(until):
        found.append(moment)
        moment = next_fire(expression, zone, moment, gap=gap, repeated=repeated)
    return found


CASES = [
    # --- Europe/Berlin, 2024-03-31: 02:00 CET (01:00Z) -> 03:00 CEST; 02:00-03:00 local is skipped.
    ("Europe/Berlin", "30 2 * * *", "2024-03-30 12:00", "2024-04-01 12:00", ["03-31 01:00", "04-01 00:30"]),
    ("Europe/Berlin", "0 3 * * *", "2024-03-30 12:00", "2024-04-01 12:00", ["03-31 01:00", "04-01 01:00"]),
    (
        "Europe/Berlin",
        "*/15 * * * *",
        "2024-03-31 00:30",
        "2024-03-31 01:30",
        ["00:45", "01:00", "01:15", "01:30"],
    ),
    (
        "Europe/Berlin",
        "0 * * * *",
        "2024-03-30 23:30",
        "2024-03-31 03:00",
        ["00:00", "01:00", "02:00", "03:00"],
    ),
    # --- Europe/Berlin, 2024-10-27: 03:00 CEST (01:00Z) -> 02:00 CET; 02:00-03:00 local twice.
    pytest.param(
        "Europe/Berlin",
        "30 2 * * *",
        "2024-10-26 12:00",
        "2024-10-28 12:00",
        ["10-27 00:30", "10-28 01:30"],
    ),
    pytest.param(
        "Europe/Berlin",
        "0 2 * * *",
        "2024-10-26 12:00",
        "2024-10-28 12:00",
        ["10-27 00:00", "10-28 01:00"],
    ),
    ("Europe/Berlin", "0 3 * * *", "2024-10-26 12:00", "2024-10-28 12:00", ["10-27 02:00", "10-28 02:00"]),
    (
        "Europe/Berlin",
        "*/15 * * * *",
        "2024-10-26 23:45",
        "2024-10-27 01:15",
        ["00:00", "00:15", "00:30", "00:45", "01:00", "01:15"],
    ),
    (
        "Europe/Berlin",
        "0 * * * *",
        "2024-10-26 22:30",
        "2024-10-27 02:30",
        ["23:00", "00:00", "01:00", "02:00"],
    ),
    # --- America/New_York, 2024-03-10: 02:00 EST (07:00Z) -> 03:00 EDT.
    (
        "America/New_York",
        "30 2 * * *",
        "2024-03-09 12:00",
        "2024-03-11 12:00",
        ["03-10 07:00", "03-11 06:30"],
    ),
    ("America/New_York", "0 3 * * *", "2024-03-09 12:00", "2024-03-11 12:00", ["03-10 07:00", "03-11 07:00"]),
    (
        "America/New_York",
        "*/15 * * * *",
        "2024-03-10 06:30",
        "2024-03-10 07:30",
        ["06:45", "07:00", "07:15", "07:30"],
    ),
    ("America/New_York", "0 * * * *", "2024-03-10 05:30", "2024-03-10 08:30", ["06:00", "07:00", "08:00"]),
    # --- America/New_York, 2024-11-03: 02:00 EDT (06:00Z) -> 01:00 EST; 01:00-02:00 local twice.
    pytest.param(
        "America/New_York",
        "30 1 * * *",
        "2024-11-02 12:00",
        "2024-11-04 12:00",
        ["11-03 05:30", "11-04 06:30"],
    ),
    (
        "America/New_York",
        "30 2 * * *",
        "2024-11-02 12:00",
        "2024-11-04 12:00",
        ["11-03 07:30", "11-04 07:30"],
    ),
    ("America/New_York", "0 3 * * *", "2024-11-02 12:00", "2024-11-04 12:00", ["11-03 08:00", "11-04 08:00"]),
    (
        "America/New_York",
        "*/15 * * * *",
        "2024-11-03 05:30",
        "2024-11-03 06:30",
        ["05:45", "06:00", "06:15", "06:30"],
    ),
    ("America/New_York", "0 * * * *", "2024-11-03 04:30", "2024-11-03 07:30", ["05:00", "06:00", "07:00"]),
    # --- Australia/Lord_Howe, 2024-04-07: 02:00 +11 (04-06 15:00Z) -> 01:30 +10:30; 01:30-02:00 twice.
    pytest.param(
        "Australia/Lord_Howe",
        "45 1 * * *",
        "2024-04-06 00:00",
        "2024-04-07 20:00",
        ["04-06 14:45", "04-07 15:15"],
    ),
    (
        "Australia/Lord_Howe",
        "30 2 * * *",
        "2024-04-06 00:00",
        "2024-04-07 20:00",
        ["04-06 16:00", "04-07 16:00"],
    ),
    (
        "Australia/Lord_Howe",
        "*/15 * * * *",
        "2024-04-06 14:30",
        "2024-04-06 15:30",
        ["14:45", "15:00", "15:15", "15:30"],
    ),
    # On the local hour: 01:00 +11, then 02:00 +10:30, 90 real minutes later.
    ("Australia/Lord_Howe", "0 * * * *", "2024-04-06 13:30", "2024-04-06 16:30", ["14:00", "15:30", "16:30"]),
    # --- Australia/Lord_Howe, 2024-10-06: 02:00 +10:30 (10-05 15:30Z) -> 02:30 +11; 02:00-02:30 skipped.
    (
        "Australia/Lord_Howe",
        "15 2 * * *",
        "2024-10-05 00:00",
        "2024-10-06 20:00",
        ["10-05 15:30", "10-06 15:15"],
    ),
    (
        "Australia/Lord_Howe",
        "0 3 * * *",
        "2024-10-05 00:00",
        "2024-10-06 20:00",
        ["10-05 16:00", "10-06 16:00"],
    ),
    (
        "Australia/Lord_Howe",
        "*/15 * * * *",
        "2024-10-05 15:00",
        "2024-10-05 16:00",
        ["15:15", "15:30", "15:45", "16:00"],
    ),
    # On the local hour: 01:00 +10:30, then 03:00 +11 (02:00 does not exist), 90 real minutes later.
    ("Australia/Lord_Howe", "0 * * * *", "2024-10-05 14:00", "2024-10-05 17:00", ["14:30", "16:00", "17:00"]),
    # --- Europe/Moscow, 2011-03-27: 02:00 +03 (03-26 23:00Z) -> 03:00 +04, the last switch (permanent +04).
    ("Europe/Moscow", "30 2 * * *", "2011-03-26 12:00", "2011-03-27 23:00", ["03-26 23:00", "03-27 22:30"]),
    ("Europe/Moscow", "0 3 * * *", "2011-03-26 12:00", "2011-03-27 23:00", ["03-26 23:00", "03-27 23:00"]),
    (
        "Europe/Moscow",
        "*/15 * * * *",
        "2011-03-26 22:30",
        "2011-03-26 23:30",
        ["22:45", "23:00", "23:15", "23:30"],
    ),
    ("Europe/Moscow", "0 * * * *", "2011-03-26 21:30", "2011-03-27 00:30", ["22:00", "23:00", "00:00"]),
    # --- Europe/Moscow, 2014-10-26: 02:00 +04 (10-25 22:00Z) -> 01:00 +03 (back to +03); 01:00-02:00 twice.
    pytest.param(
        "Europe/Moscow",
        "30 1 * * *",
        "2014-10-25 12:00",
        "2014-10-26 23:00",
        ["10-25 21:30", "10-26 22:30"],
    ),
    ("Europe/Moscow", "30 2 * * *", "2014-10-25 12:00", "2014-10-26 23:59", ["10-25 23:30", "10-26 23:30"]),
    ("Europe/Moscow", "0 3 * * *", "2014-10-25 12:00", "2014-10-27 00:00", ["10-26 00:00", "10-27 00:00"]),
    (
        "Europe/Moscow",
        "*/15 * * * *",
        "2014-10-25 21:30",
        "2014-10-25 22:30",
        ["21:45", "22:00", "22:15", "22:30"],
    ),
    ("Europe/Moscow", "0 * * * *", "2014-10-25 20:30", "2014-10-25 23:30", ["21:00", "22:00", "23:00"]),
]


def expand(after: str, short: list[str]) -> list[datetime]:
    """``HH:MM`` fires are on the window's first day, or the next day once they wrap past midnight;
    ``MM-DD HH:MM`` ones are in the window's year."""
    year, day = after[:4], after[:10]
    result: list[datetime] = []
    for text in short:
        if len(text) > 5:
            result.append(at(f"{year}-{text}"))
            continue
        moment = at(f"{day} {text}")
        while (result and moment <= result[-1]) or moment <= at(after):
            moment += timedelta(days=1)
        result.append(moment)
    return result


@pytest.mark.parametrize(("zone", "expression", "after", "until", "expected"), CASES)
def test_fires_around_the_change(
    zone: str, expression: str, after: str, until: str, expected: list[str]
) -> None:
    assert fires(expression, zone, after, until) == expand(after, expected)


POLICY_CASES = [
    # Berlin spring: 02:30 does not exist on 03-31; skip drops that day's fire, shift (default) moves it.
    ("Europe/Berlin", "30 2 * * *", "skip", "first", "2024-03-30 12:00", "2024-04-01 12:00", ["04-01 00:30"]),
    ("Europe/Berlin", "* 2 * * *", "skip", "first", "2024-03-30 23:00", "2024-03-31 23:59", []),
    # A fire whose local time exists is untouched by skip, wildcard or not.
    (
        "Europe/Berlin",
        "0 3 * * *",
        "skip",
        "first",
        "2024-03-30 12:00",
        "2024-04-01 12:00",
        ["03-31 01:00", "04-01 01:00"],
    ),
    (
        "Europe/Berlin",
        "*/30 * * * *",
        "skip",
        "first",
        "2024-03-31 00:00",
        "2024-03-31 01:30",
        ["00:30", "01:00", "01:30"],
    ),
    # Berlin autumn: 02:30 happens twice on 10-27 (00:30Z CEST, 01:30Z CET); both fires it in each pass.
    (
        "Europe/Berlin",
        "30 2 * * *",
        "shift",
        "both",
        "2024-10-26 12:00",
        "2024-10-28 12:00",
        ["10-27 00:30", "10-27 01:30", "10-28 01:30"],
    ),
    (
        "Europe/Berlin",
        "0,30 2 * * *",
        "shift",
        "both",
        "2024-10-27 00:00",
        "2024-10-27 02:00",
        ["00:30", "01:00", "01:30"],
    ),
    # Starting inside the first pass still finds the second pass of a fire already gone out.
    (
        "Europe/Berlin",
        "30 2 * * *",
        "shift",
        "both",
        "2024-10-27 00:45",
        "2024-10-28 12:00",
        ["10-27 01:30", "10-28 01:30"],
    ),
    # New York autumn: 01:00-02:00 local twice (05:00Z EDT, 06:00Z EST).
    (
        "America/New_York",
        "15 1 * * *",
        "shift",
        "both",
        "2024-11-03 00:00",
        "2024-11-03 12:00",
        ["05:15", "06:15"],
    ),
    # Lord Howe autumn: 01:30-02:00 local twice, 30 minutes apart (14:30Z +11, 15:00Z +10:30).
    (
        "Australia/Lord_Howe",
        "45 1 * * *",
        "shift",
        "both",
        "2024-04-06 12:00",
        "2024-04-07 12:00",
        ["14:45", "15:15"],
    ),
    (
        "Australia/Lord_Howe",
        "45 1 * * *",
        "shift",
        "first",
        "2024-04-06 12:00",
        "2024-04-07 12:00",
        ["14:45"],
    ),
    # Both policies at once; a day without a change is the plain schedule.
    (
        "Europe/Berlin",
        "30 2 * * *",
        "skip",
        "both",
        "2024-06-01 00:00",
        "2024-06-03 00:00",
        ["06-01 00:30", "06-02 00:30"],
    ),
]


@pytest.mark.parametrize(
    ("zone", "expression", "gap", "repeated", "after", "until", "expected"), POLICY_CASES
)
def test_dst_policy_overrides(
    zone: str,
    expression: str,
    gap: str,
    repeated: str,
    after: str,
    until: str,
    expected: list[str],
) -> None:
    found = fires(expression, zone, after, until, DstGap(gap), DstRepeated(repeated))
    assert found == expand(after, expected)
