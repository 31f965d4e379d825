"""The ``stopped`` delivery state: a pending delivery whose reminder was cancelled, snoozed or
completed before Redis confirmed its push.

Cancel and snooze only cleared the redelivery time of sent deliveries, so a redelivery claimed but
not yet pushed (Redis refusing it, or its poller gone) was still pushed after the cancel answered,
re-armed and finally dead-lettered. They now stop pending deliveries too, as ``stopped``: no
poller pushes one again. The upgrade stops what a cancel of an older release left behind.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BEFORE = "state IN ('pending', 'sent', 'acked', 'dead')"
_AFTER = "state IN ('pending', 'sent', 'acked', 'dead', 'stopped')"


def upgrade() -> None:
    op.drop_constraint("deliveries_state_check", "deliveries", type_="check")
    op.create_check_constraint("deliveries_state_check", "deliveries", _AFTER)
    # What cancels of older releases let through: their events are not pushed again either.
    op.execute(
        """
        UPDATE deliveries AS d
        SET state = CASE WHEN d.state = 'pending' THEN 'stopped' ELSE d.state END,
            next_attempt_at = NULL, updated_at = now()
        FROM reminders AS r
        WHERE r.id = d.reminder_id AND r.status = 'cancelled'
          AND (d.state = 'pending' OR (d.state = 'sent' AND d.next_attempt_at IS NOT NULL))
        """
    )


def downgrade() -> None:
    # Sent with no redelivery time is the older release's closest finished state: never pushed again.
    op.execute("UPDATE deliveries SET state = 'sent', next_attempt_at = NULL WHERE state = 'stopped'")
    op.drop_constraint("deliveries_state_check", "deliveries", type_="check")
    op.create_check_constraint("deliveries_state_check", "deliveries", _BEFORE)
