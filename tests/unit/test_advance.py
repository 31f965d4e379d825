"""What one claim sends (poller/advance.py): on-time fires, misfire policies, ack, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.states import ReminderStatus
from poller.advance import MISSED_LIMIT, Due, Fire, Plan, plan

POLICIES = ["skip", "fire_once", "fire_all"]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def run(
    *,
    scheduled_for: datetime,
    db_now: datetime,
    cron: str | None = "0 * * * *",
    policy: str = "fire_once",
    grace: int = 60,
    ack_required: bool = True,
    timezone: str = "UTC",
    reminder_type: str = "recurring",
    until: datetime | None = None,
    max_runs: int | None = None,
    runs_count: int = 0,
) -> Plan:
    due = Due(
        type=reminder_type,
        cron_expression=cron,
        timezone=timezone,
        misfire_policy=policy,
        misfire_grace_seconds=grace,
        ack_required=ack_required,
        scheduled_for=scheduled_for,
        until=until,
        max_runs=max_runs,
        runs_count=runs_count,
    )
    return plan(due, db_now)


# --- one-time -----------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_one_time_on_time_fires_and_waits_for_its_ack(policy: str) -> None:
    at = utc(2025, 1, 1, 10)
    result = run(reminder_type="one_time", cron=None, policy=policy, scheduled_for=at, db_now=at)
    assert result == Plan([Fire(at, False)], None, ReminderStatus.ACTIVE)


def test_one_time_without_ack_completes_when_it_fires() -> None:
    at = utc(2025, 1, 1, 10)
    result = run(reminder_type="one_time", cron=None, ack_required=False, scheduled_for=at, db_now=at)
    assert result == Plan([Fire(at, False)], None, ReminderStatus.COMPLETED)


@pytest.mark.parametrize("policy", ["fire_once", "fire_all"])
def test_one_time_late_fires_marked_late(policy: str) -> None:
    at = utc(2025, 1, 1, 10)
    later = at + timedelta(seconds=61)
    result = run(reminder_type="one_time", cron=None, policy=policy, scheduled_for=at, db_now=later)
    assert result == Plan([Fire(at, True)], None, ReminderStatus.ACTIVE)


def test_one_time_within_grace_is_not_late() -> None:
    at = utc(2025, 1, 1, 10)
    result = run(reminder_type="one_time", cron=None, scheduled_for=at, db_now=at + timedelta(seconds=60))
    assert result.fires == [Fire(at, False)]


def test_one_time_late_with_skip_is_skipped_and_completed() -> None:
    at = utc(2025, 1, 1, 10)
    result = run(reminder_type="one_time", cron=None, policy="skip", scheduled_for=at, db_now=utc(2025, 1, 2))
    assert result == Plan([], None, ReminderStatus.COMPLETED, skipped=[at])


# --- recurring, on time -------------------------------------------------------------------------


@pytest.mark.parametrize("policy", POLICIES)
def test_recurring_on_time_fires_once_and_moves_one_step(policy: str) -> None:
    at = utc(2025, 1, 1, 10)
    result = run(policy=policy, scheduled_for=at, db_now=at + timedelta(seconds=2))
    assert result == Plan([Fire(at, False)], utc(2025, 1, 1, 11), ReminderStatus.ACTIVE)


def test_next_fire_comes_from_the_occurrence_not_from_the_clock() -> None:
    # A poller 30 s behind (within grace) still steps from the scheduled time: nothing is skipped.
    at = utc(2025, 1, 1, 10)
    result = run(cron="*/10 * * * * *", scheduled_for=at, db_now=at + timedelta(seconds=30))
    assert result.fires == [Fire(at, False)]
    assert result.next_run_at == at + timedelta(seconds=10)


def test_recurring_evaluates_cron_in_its_time_zone() -> None:
    at = utc(2025, 1, 6, 9)  # 10:00 in Berlin (winter)
    result = run(cron="0 10 * * *", timezone="Europe/Berlin", scheduled_for=at, db_now=at)
    assert result.next_run_at == utc(2025, 1, 7, 9)


def test_recurring_ack_setting_does_not_change_status() -> None:
    at = utc(2025, 1, 1, 10)
    assert run(ack_required=False, scheduled_for=at, db_now=at).status == "active"


# --- recurring, late (misfire) ------------------------------------------------------------------

DOWN_FROM = utc(2025, 1, 1, 10)  # hourly reminder; the service was down for 5 hours
BACK_AT = utc(2025, 1, 1, 14, 30)
MISSED = [utc(2025, 1, 1, h) for h in range(10, 15)]  # 10:00 .. 14:00


def test_skip_sends_nothing_late_and_lists_every_skipped_fire() -> None:
    result = run(policy="skip", scheduled_for=DOWN_FROM, db_now=BACK_AT)
    assert result == Plan([], utc(2025, 1, 1, 15), ReminderStatus.ACTIVE, skipped=MISSED)


def test_fire_once_sends_one_late_catch_up_for_the_most_recent_miss() -> None:
    result = run(policy="fire_once", scheduled_for=DOWN_FROM, db_now=BACK_AT)
    assert result == Plan(
        [Fire(MISSED[-1], True)], utc(2025, 1, 1, 15), ReminderStatus.ACTIVE, skipped=MISSED[:-1]
    )


def test_fire_all_sends_every_miss_in_order_marked_late() -> None:
    result = run(policy="fire_all", scheduled_for=DOWN_FROM, db_now=BACK_AT)
    assert result == Plan([Fire(t, True) for t in MISSED], utc(2025, 1, 1, 15), ReminderStatus.ACTIVE)


@pytest.mark.parametrize("policy", POLICIES)
def test_misses_still_within_grace_are_sent_on_time(policy: str) -> None:
    # Every 10 s; down from :00 to :35 with a 12 s grace: :30 is on time, :00-:20 are late.
    start = utc(2025, 1, 1, 10)
    now = start + timedelta(seconds=35)
    result = run(cron="*/10 * * * * *", grace=12, policy=policy, scheduled_for=start, db_now=now)
    on_time = Fire(start + timedelta(seconds=30), False)
    late = [start + timedelta(seconds=s) for s in (0, 10, 20)]
    assert result.next_run_at == start + timedelta(seconds=40)
    assert on_time in result.fires
    expected = {
        "skip": ([on_time], late),
        "fire_once": ([Fire(late[-1], True), on_time], late[:-1]),
        "fire_all": ([*(Fire(t, True) for t in late), on_time], []),
    }[policy]
    assert (result.fires, result.skipped) == expected


@pytest.mark.parametrize("policy", POLICIES)
def test_a_huge_backlog_is_bounded_and_restarts_from_now(policy: str) -> None:
    start = utc(2025, 1, 1)
    now = start + timedelta(hours=2)  # 7,200 missed one-second fires
    result = run(cron="* * * * * *", policy=policy, scheduled_for=start, db_now=now)
    assert result.truncated
    assert result.next_run_at == now + timedelta(seconds=1)
    assert len(result.fires) + len(result.skipped) == MISSED_LIMIT
    if policy == "fire_all":
        assert [f.scheduled_for for f in result.fires] == [
            start + timedelta(seconds=s) for s in range(MISSED_LIMIT)
        ]


def test_zero_grace_makes_any_delay_late() -> None:
    at = utc(2025, 1, 1, 10)
    result = run(grace=0, scheduled_for=at, db_now=at + timedelta(milliseconds=1))
    assert result.fires == [Fire(at, True)]


# --- end conditions -------------------------------------------------------------------------------


def test_the_last_allowed_run_completes_the_series() -> None:
    at = utc(2025, 1, 1, 10)
    result = run(
        scheduled_for=at,
        db_now=at,
        max_runs=3,
        runs_count=2,
    )
    assert result == Plan([Fire(at, False)], None, ReminderStatus.COMPLETED, ended="max_runs")


def test_fire_all_sends_no_more_than_the_runs_left() -> None:
    result = run(
        policy="fire_all",
        scheduled_for=DOWN_FROM,
        db_now=BACK_AT,
        max_runs=4,
        runs_count=1,
    )
    assert [f.scheduled_for for f in result.fires] == MISSED[:3]
    assert (result.status, result.ended) == ("completed", "max_runs")


def test_a_next_fire_past_until_completes_the_series() -> None:
    at = utc(2025, 1, 1, 10)
    result = run(
        scheduled_for=at,
        db_now=at,
        until=utc(2025, 1, 1, 10, 30),
    )
    assert result == Plan([Fire(at, False)], None, ReminderStatus.COMPLETED, ended="until")


def test_within_its_window_the_series_goes_on() -> None:
    at = utc(2025, 1, 1, 10)
    result = run(
        scheduled_for=at,
        db_now=at,
        until=utc(2025, 1, 2),
        max_runs=10,
        runs_count=1,
    )
    assert result == Plan([Fire(at, False)], utc(2025, 1, 1, 11), ReminderStatus.ACTIVE)
