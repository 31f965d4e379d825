"""The values each enumerated column may hold; the schema's CHECK constraints are built from these.

Kept apart from ``core.schema`` so that code which only needs the values (the state gauges, the
status command) does not import SQLAlchemy.
"""

from __future__ import annotations

REMINDER_TYPES = ("one_time", "recurring")
REMINDER_STATUSES = ("pending", "active", "paused", "completed", "cancelled", "quarantined")
# What the per-assistant cap counts: a reminder that may still fire. Migration 0012's triggers
# spell the same list (frozen there), as does the consistency test.
LIVE_STATUSES = ("pending", "active", "paused")
MISFIRE_POLICIES = ("skip", "fire_once", "fire_all")
DST_GAP_POLICIES = ("shift", "skip")
DST_REPEATED_POLICIES = ("first", "both")
DELIVERY_STATES = ("pending", "sent", "acked", "dead", "stopped")
