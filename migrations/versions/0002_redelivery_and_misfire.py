"""Redelivery and misfire: per-reminder ack and grace, per-delivery retry time and lateness.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.add_column(
        "reminders", sa.Column("ack_required", sa.Boolean, nullable=False, server_default=sa.true())
    )
    op.add_column(
        "reminders",
        sa.Column("misfire_grace_seconds", sa.Integer, nullable=False, server_default="60"),
    )
    op.create_check_constraint("reminders_misfire_grace_check", "reminders", "misfire_grace_seconds >= 0")
    op.add_column("deliveries", sa.Column("next_attempt_at", TS, nullable=True))
    op.add_column("deliveries", sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("deliveries", sa.Column("dead_lettered_at", TS, nullable=True))
    op.create_index(
        "deliveries_redelivery_idx",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("state = 'sent' AND next_attempt_at IS NOT NULL"),
    )
    op.create_index(
        "deliveries_dead_letter_idx",
        "deliveries",
        ["updated_at"],
        postgresql_where=sa.text("state = 'dead' AND dead_lettered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("deliveries_dead_letter_idx", table_name="deliveries")
    op.drop_index("deliveries_redelivery_idx", table_name="deliveries")
    op.drop_column("deliveries", "dead_lettered_at")
    op.drop_column("deliveries", "late")
    op.drop_column("deliveries", "next_attempt_at")
    op.drop_constraint("reminders_misfire_grace_check", "reminders")
    op.drop_column("reminders", "misfire_grace_seconds")
    op.drop_column("reminders", "ack_required")
