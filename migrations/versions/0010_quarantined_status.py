"""The ``quarantined`` status: a reminder the poller could not plan or encode, set aside.

One row holding what the scheduler cannot compute (an infinite time, a cron or zone that no longer
parses, a payload no key decrypts) used to make every claim of every poller fail. The poller now
moves such a row to ``quarantined`` (audited with the reason) and fires the rest; the status is
outside the due index, so the row is never claimed again until an operator repairs it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BEFORE = "status IN ('pending', 'active', 'paused', 'completed', 'cancelled')"
_AFTER = "status IN ('pending', 'active', 'paused', 'completed', 'cancelled', 'quarantined')"


def upgrade() -> None:
    op.drop_constraint("reminders_status_check", "reminders", type_="check")
    op.create_check_constraint("reminders_status_check", "reminders", _AFTER)


def downgrade() -> None:
    # Quarantined rows could not fire anyway; cancelled is the closest status that keeps them out.
    op.execute("UPDATE reminders SET status = 'cancelled' WHERE status = 'quarantined'")
    op.drop_constraint("reminders_status_check", "reminders", type_="check")
    op.create_check_constraint("reminders_status_check", "reminders", _BEFORE)
