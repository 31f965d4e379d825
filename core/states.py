"""The values each enumerated column may hold, one StrEnum per concept; the schema's CHECK
constraints, the API's enums and the state gauges are all built from these. The docstrings are
the OpenAPI document's descriptions of the enums: they are written for an API client.

Kept apart from ``core.schema`` so that code which only needs the values (the state gauges, the
status command) does not import SQLAlchemy. The members are ``str``: asyncpg, JSON and log lines
take them as their value, and a row's text compares equal to its member.
"""

from __future__ import annotations

from enum import StrEnum


class ReminderType(StrEnum):
    """A one-time reminder fires once, at trigger_at; a recurring one at each fire of its cron expression."""

    ONE_TIME = "one_time"
    RECURRING = "recurring"


class ReminderStatus(StrEnum):
    """Where a reminder is in its life. active: recurring and scheduling, or one-time and fired,
    awaiting its ack; quarantined: set aside, one the service could not plan or read."""

    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    QUARANTINED = "quarantined"


class MisfirePolicy(StrEnum):
    """What a fire missed by more than misfire_grace_seconds does: skip it, one late catch-up event
    (fire_once), or each missed fire (fire_all)."""

    SKIP = "skip"
    FIRE_ONCE = "fire_once"
    FIRE_ALL = "fire_all"


class DstGap(StrEnum):
    """A fire whose local time a clock change skips: goes out right after the jump (shift), or not at
    all (skip)."""

    SHIFT = "shift"
    SKIP = "skip"


class DstRepeated(StrEnum):
    """A fixed-time fire in a repeated local hour: goes out in the first pass only (first), or in both."""

    FIRST = "first"
    BOTH = "both"


class DeliveryState(StrEnum):
    """Where one occurrence's delivery is: pending (not yet confirmed pushed), sent, acked, dead
    (its last attempt went unacked: dead-lettered) or stopped (its reminder was cancelled, completed
    or snoozed before it went out)."""

    PENDING = "pending"
    SENT = "sent"
    ACKED = "acked"
    DEAD = "dead"
    STOPPED = "stopped"


# What the per-assistant cap counts: a reminder that may still fire. Migration 0012's triggers
# spell the same list (frozen there), as does the consistency test.
LIVE_STATUSES = (ReminderStatus.PENDING, ReminderStatus.ACTIVE, ReminderStatus.PAUSED)
# What the poller claims when due, as sql/claim.sql spells it (a paused reminder keeps its
# next_run_at but is not claimed).
SCHEDULED_STATUSES = (ReminderStatus.PENDING, ReminderStatus.ACTIVE)
# A reminder that is over: it never fires again (unless an operator repairs a quarantined one) and
# a PATCH is refused (a DELETE still cancels it).
ENDED_STATUSES = (ReminderStatus.COMPLETED, ReminderStatus.CANCELLED, ReminderStatus.QUARANTINED)


def _values(enum: type[StrEnum]) -> tuple[str, ...]:
    # Plain str, not members: orjson refuses a StrEnum as a dict key (the status command's counts),
    # and a member's repr is <Name.MEMBER: 'value'> (the CHECK constraints' text).
    return tuple(member.value for member in enum)


# The values in declaration order, as the CHECK constraints list them (the migrations froze that
# order; the drift test compares the constraint text).
REMINDER_TYPES = _values(ReminderType)
REMINDER_STATUSES = _values(ReminderStatus)
MISFIRE_POLICIES = _values(MisfirePolicy)
DST_GAP_POLICIES = _values(DstGap)
DST_REPEATED_POLICIES = _values(DstRepeated)
DELIVERY_STATES = _values(DeliveryState)
