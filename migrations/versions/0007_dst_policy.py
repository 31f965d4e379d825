"""Per-reminder DST policy: what a fire in a skipped local hour (gap) and in a repeated one does.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Constant defaults: PostgreSQL adds such columns without rewriting the table.
    op.add_column("reminders", sa.Column("dst_gap", sa.Text, nullable=False, server_default="shift"))
    op.add_column("reminders", sa.Column("dst_repeated", sa.Text, nullable=False, server_default="first"))
    op.create_check_constraint("reminders_dst_gap_check", "reminders", "dst_gap IN ('shift', 'skip')")
    op.create_check_constraint(
        "reminders_dst_repeated_check", "reminders", "dst_repeated IN ('first', 'both')"
    )


def downgrade() -> None:
    op.drop_constraint("reminders_dst_repeated_check", "reminders")
    op.drop_constraint("reminders_dst_gap_check", "reminders")
    op.drop_column("reminders", "dst_repeated")
    op.drop_column("reminders", "dst_gap")
