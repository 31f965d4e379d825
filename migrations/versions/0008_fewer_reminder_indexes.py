"""Drop three indexes of the reminders table that no query needs.

Every fire moves ``next_run_at``, which the due index covers, so no fire is a HOT update: each one
writes a new entry into every index of the table. ``status`` (five values) and ``trigger_at``
serve no query, and ``user_id`` alone is the prefix of ``(user_id, status)``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("reminders_status_idx", table_name="reminders")
    op.drop_index("reminders_trigger_at_idx", table_name="reminders")
    op.drop_index("reminders_user_id_idx", table_name="reminders")


def downgrade() -> None:
    op.create_index("reminders_user_id_idx", "reminders", ["user_id"])
    op.create_index("reminders_trigger_at_idx", "reminders", ["trigger_at"])
    op.create_index("reminders_status_idx", "reminders", ["status"])
