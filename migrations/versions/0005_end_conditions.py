"""End conditions of recurring reminders: start_at, until, max_runs, and the runs so far.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column("reminders", sa.Column("start_at", TS, nullable=True))
    op.add_column("reminders", sa.Column("until", TS, nullable=True))
    op.add_column("reminders", sa.Column("max_runs", sa.Integer, nullable=True))
    op.add_column("reminders", sa.Column("runs_count", sa.Integer, nullable=False, server_default="0"))
    op.create_check_constraint("reminders_max_runs_check", "reminders", "max_runs IS NULL OR max_runs > 0")


def downgrade() -> None:
    op.drop_constraint("reminders_max_runs_check", "reminders")
    op.drop_column("reminders", "runs_count")
    op.drop_column("reminders", "max_runs")
    op.drop_column("reminders", "until")
    op.drop_column("reminders", "start_at")
