"""Where a reminder goes after a fire (poller/advance.py): a pure function of the times given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from poller.advance import NextState, advance

POLICIES = ["skip", "fire_once", "fire_all"]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def run(
    *,
    cron: str | None = "0 * * * *",
    policy: str = "fire_once",
    scheduled_for: datetime,
    db_now: datetime,
    timezone: str = "UTC",
    reminder_type: str = "recurring",
) -> NextState:
    return advance(
        reminder_type=reminder_type,
        cron_expression=cron,
        timezone=timezone,
        misfire_policy=policy,
        scheduled_for=scheduled_for,
        db_now=db_now,
    )


@pytest.mark.parametrize("policy", POLICIES)
def test_one_time_goes_active_with_no_next_run(policy: str) -> None:
    state = run(
        reminder_type="one_time",
        cron=None,
        policy=policy,
        scheduled_for=utc(2025, 1, 1, 10),
        db_now=utc(2025, 1, 1, 10, 0, 1),
    )
    assert state == NextState(None, "active")
    assert state.next_run_at is None
    assert state.status == "active"


def test_one_time_ignores_any_cron_and_lateness() -> None:
    state = run(reminder_type="one_time", scheduled_for=utc(2025, 1, 1, 10), db_now=utc(2025, 3, 1))
    assert state == NextState(None, "active")


@pytest.mark.parametrize("policy", POLICIES)
def test_recurring_on_time_moves_to_the_next_fire(policy: str) -> None:
    state = run(policy=policy, scheduled_for=utc(2025, 1, 1, 10), db_now=utc(2025, 1, 1, 10, 0, 2))
    assert state == NextState(utc(2025, 1, 1, 11), "active")


@pytest.mark.parametrize("policy", POLICIES)
def test_recurring_next_fire_is_computed_from_scheduled_for_not_db_now(policy: str) -> None:
    # A database clock a little behind the occurrence: computing from db_now would give 10:00
    # again (the same occurrence twice); computing from scheduled_for gives 11:00.
    state = run(policy=policy, scheduled_for=utc(2025, 1, 1, 10), db_now=utc(2025, 1, 1, 9, 59, 58))
    assert state == NextState(utc(2025, 1, 1, 11), "active")


@pytest.mark.parametrize("policy", POLICIES)
def test_recurring_fired_late_but_before_the_following_fire_keeps_the_grid(policy: str) -> None:
    # */15 scheduled 10:00, fired at 10:14: next is 10:15, computed from the occurrence.
    state = run(
        cron="*/15 * * * *",
        policy=policy,
        scheduled_for=utc(2025, 1, 1, 10),
        db_now=utc(2025, 1, 1, 10, 14, 59),
    )
    assert state.next_run_at == utc(2025, 1, 1, 10, 15)


@pytest.mark.parametrize("policy", ["skip", "fire_once"])
def test_missed_fires_jump_to_the_first_fire_after_now(policy: str) -> None:
    state = run(policy=policy, scheduled_for=utc(2025, 1, 1, 10), db_now=utc(2025, 1, 1, 13, 30))
    assert state == NextState(utc(2025, 1, 1, 14), "active")


def test_fire_all_keeps_the_next_missed_fire() -> None:
    state = run(policy="fire_all", scheduled_for=utc(2025, 1, 1, 10), db_now=utc(2025, 1, 1, 13, 30))
    assert state == NextState(utc(2025, 1, 1, 11), "active")


def test_fire_all_walks_every_missed_fire_in_order() -> None:
    db_now = utc(2025, 1, 1, 13, 30)
    scheduled: datetime | None = utc(2025, 1, 1, 10)
    fired = []
    while scheduled is not None and scheduled <= db_now:
        fired.append(scheduled)
        scheduled = run(policy="fire_all", scheduled_for=scheduled, db_now=db_now).next_run_at
    assert fired == [utc(2025, 1, 1, h) for h in (10, 11, 12, 13)]
    assert scheduled == utc(2025, 1, 1, 14)


@pytest.mark.parametrize("policy", ["skip", "fire_once"])
def test_after_a_long_outage_the_next_fire_is_in_the_future(policy: str) -> None:
    db_now = utc(2025, 6, 1, 7, 3, 4)
    state = run(cron="0 10 * * *", policy=policy, scheduled_for=utc(2025, 1, 1, 10), db_now=db_now)
    assert state.next_run_at == utc(2025, 6, 1, 10)
    assert state.next_run_at is not None and state.next_run_at > db_now


def test_recurring_uses_the_reminders_time_zone() -> None:
    # 10:00 Berlin: 09:00Z in winter, 08:00Z after the switch to summer time on 2025-03-30.
    state = run(
        cron="0 10 * * *",
        timezone="Europe/Berlin",
        scheduled_for=utc(2025, 3, 29, 9),
        db_now=utc(2025, 3, 29, 9, 0, 1),
    )
    assert state.next_run_at == utc(2025, 3, 30, 8)


def test_late_in_a_time_zone_jumps_to_local_next_fire() -> None:
    state = run(
        cron="0 10 * * *",
        timezone="America/New_York",
        policy="skip",
        scheduled_for=utc(2025, 1, 1, 15),
        db_now=utc(2025, 1, 3, 16),
    )
    assert state.next_run_at == utc(2025, 1, 4, 15)


def test_seconds_first_cron() -> None:
    scheduled = utc(2025, 1, 1, 10, 0, 0)
    assert run(cron="*/2 * * * * *", scheduled_for=scheduled, db_now=scheduled).next_run_at == utc(
        2025, 1, 1, 10, 0, 2
    )
    late = run(
        cron="*/2 * * * * *",
        policy="fire_once",
        scheduled_for=scheduled,
        db_now=scheduled + timedelta(seconds=9),
    )
    assert late.next_run_at == utc(2025, 1, 1, 10, 0, 10)
