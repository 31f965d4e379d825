"""Where a reminder goes after one of its occurrences fires: a pure function of the times given."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from core.cron import next_fire


class NextState(NamedTuple):
    """The reminder's state once this occurrence is out."""

    next_run_at: datetime | None
    status: str


def advance(
    *,
    reminder_type: str,
    cron_expression: str | None,
    timezone: str,
    misfire_policy: str,
    scheduled_for: datetime,
    db_now: datetime,
) -> NextState:
    """Next fire and status after the occurrence at ``scheduled_for`` fires at ``db_now``.

    The next fire is computed from the occurrence's own time, never from a poller's clock. When
    that is already past (downtime), ``fire_all`` keeps it so every missed fire goes out in order;
    the other policies jump to the first fire after now, so at most this one catch-up is sent.
    """
    if reminder_type == "one_time" or cron_expression is None:
        # Fired, now waiting for the assistant's ack.
        return NextState(None, "active")
    following = next_fire(cron_expression, timezone, scheduled_for)
    if following <= db_now and misfire_policy != "fire_all":
        following = next_fire(cron_expression, timezone, db_now)
    return NextState(following, "active")
