"""What one claim of a due reminder does: which occurrences fire, which are skipped, what is next.

A pure function of the times given. An occurrence is *late* when it is claimed more than the
reminder's ``misfire_grace_seconds`` after its scheduled time (the service or the reminder was
down, paused, or far behind); late occurrences follow the reminder's misfire policy:

- ``skip``: late occurrences are not sent (each is audited); the series goes on at the next fire.
- ``fire_once`` (default): one catch-up event, the most recent late occurrence, marked late.
- ``fire_all``: every missed occurrence in order, marked late, at most ``MISSED_LIMIT``.

Occurrences within the grace are on time and always sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Protocol

from core.cron import next_fire
from core.states import DstGap, DstRepeated, MisfirePolicy, ReminderStatus, ReminderType

# Upper bound on the missed occurrences one claim looks at (and fire_all sends).
MISSED_LIMIT = 1000


class _Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...


# Due, Fire and Plan are built per claimed row: not frozen, for the reason given on
# core.events.Occurrence.
@dataclass(slots=True)
class Due:
    """A due reminder as the claim reads it (sql/claim.sql, claim_due): what planning its claim needs."""

    type: str
    cron_expression: str | None
    timezone: str
    misfire_policy: str
    misfire_grace_seconds: int
    ack_required: bool
    scheduled_for: datetime
    until: datetime | None = None
    max_runs: int | None = None
    runs_count: int = 0
    dst_gap: DstGap = DstGap.SHIFT
    dst_repeated: DstRepeated = DstRepeated.FIRST

    @classmethod
    def from_row(cls, row: _Row) -> Due:
        """The fields of a claim_due row (an asyncpg Record, or any mapping with the same keys)."""
        return cls(*_DUE_COLUMNS(row))


_DUE_COLUMNS = itemgetter(*(f.name for f in fields(Due)))


@dataclass(slots=True)
class Fire:
    """One occurrence to send now."""

    scheduled_for: datetime
    late: bool


@dataclass(slots=True)
class Plan:
    """The outcome of claiming one due reminder."""

    fires: list[Fire]
    next_run_at: datetime | None
    status: ReminderStatus
    skipped: list[datetime] = field(default_factory=list)  # late occurrences not sent
    # More than MISSED_LIMIT were missed: those past the limit were neither sent nor listed.
    truncated: bool = False
    # Why the series ended with this claim ("max_runs" or "until"), if it did.
    ended: str | None = None


def plan(due: Due, db_now: datetime) -> Plan:
    """Decide what the claim of ``due``'s occurrence at ``due.scheduled_for``, at ``db_now``, sends.

    The next fire is computed from the occurrences' own times, never from a poller's clock. A
    recurring reminder ends (``completed``) once ``max_runs`` occurrences went out, or when its
    next fire would come after ``until``.
    """
    outcome = _plan(
        reminder_type=due.type,
        cron_expression=due.cron_expression,
        timezone=due.timezone,
        misfire_policy=due.misfire_policy,
        misfire_grace_seconds=due.misfire_grace_seconds,
        ack_required=due.ack_required,
        scheduled_for=due.scheduled_for,
        db_now=db_now,
        dst_gap=due.dst_gap,
        dst_repeated=due.dst_repeated,
    )
    until, max_runs, runs_count = due.until, due.max_runs, due.runs_count
    if due.type == ReminderType.ONE_TIME or (until is None and max_runs is None):
        return outcome
    fires = [f for f in outcome.fires if until is None or f.scheduled_for <= until]
    if max_runs is not None:
        fires = fires[: max(0, max_runs - runs_count)]
    ended = None
    if max_runs is not None and runs_count + len(fires) >= max_runs:
        ended = "max_runs"
    elif until is not None and (outcome.next_run_at is None or outcome.next_run_at > until):
        ended = "until"
    if ended is None:
        return replace(outcome, fires=fires)
    return replace(outcome, fires=fires, next_run_at=None, status=ReminderStatus.COMPLETED, ended=ended)


def _plan(
    *,
    reminder_type: str,
    cron_expression: str | None,
    timezone: str,
    misfire_policy: str,
    misfire_grace_seconds: int,
    ack_required: bool,
    scheduled_for: datetime,
    db_now: datetime,
    dst_gap: DstGap,
    dst_repeated: DstRepeated,
) -> Plan:
    late_before = db_now - timedelta(seconds=misfire_grace_seconds)
    if reminder_type == ReminderType.ONE_TIME or cron_expression is None:
        is_late = scheduled_for < late_before
        if is_late and misfire_policy == MisfirePolicy.SKIP:
            return Plan([], None, ReminderStatus.COMPLETED, skipped=[scheduled_for])
        # Fired: waiting for the assistant's ack, unless none is expected.
        status = ReminderStatus.ACTIVE if ack_required else ReminderStatus.COMPLETED
        return Plan([Fire(scheduled_for, is_late)], None, status)

    if scheduled_for >= late_before:
        # On time (the common case): one fire, and the series moves on by one step. If that next
        # step is already due it is claimed again right away, and judged on its own lateness.
        following = next_fire(cron_expression, timezone, scheduled_for, gap=dst_gap, repeated=dst_repeated)
        return Plan([Fire(scheduled_for, False)], following, ReminderStatus.ACTIVE)

    def following_after(moment: datetime) -> datetime:
        assert cron_expression is not None
        return next_fire(cron_expression, timezone, moment, gap=dst_gap, repeated=dst_repeated)

    # Late: gather what was missed up to now, in order, bounded.
    missed = [scheduled_for]
    current = scheduled_for
    while True:
        current = following_after(current)
        if current > db_now or len(missed) > MISSED_LIMIT:
            break
        missed.append(current)
    truncated = current <= db_now
    if truncated:
        # More than MISSED_LIMIT missed: stop looking and restart the series from now.
        missed = missed[:MISSED_LIMIT]
        current = following_after(db_now)
    late_ones = [t for t in missed if t < late_before]
    on_time = [Fire(t, False) for t in missed if t >= late_before]
    if misfire_policy == MisfirePolicy.SKIP:
        return Plan(on_time, current, ReminderStatus.ACTIVE, skipped=late_ones, truncated=truncated)
    if misfire_policy == MisfirePolicy.FIRE_ALL:
        fires = [Fire(t, True) for t in late_ones] + on_time
        return Plan(fires, current, ReminderStatus.ACTIVE, truncated=truncated)
    # fire_once: the most recent late occurrence stands for all of them.
    fires = [Fire(late_ones[-1], True), *on_time]
    return Plan(fires, current, ReminderStatus.ACTIVE, skipped=late_ones[:-1], truncated=truncated)
