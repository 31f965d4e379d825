"""Initial schema: reminders (the queue), deliveries (the outbox), audit_log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("assistant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("created_by_assistant_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("trigger_at", TS, nullable=True),
        sa.Column("cron_expression", sa.Text, nullable=True),
        sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("next_run_at", TS, nullable=True),
        sa.Column("last_triggered_at", TS, nullable=True),
        sa.Column("misfire_policy", sa.Text, nullable=False, server_default="fire_once"),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("type IN ('one_time', 'recurring')", name="reminders_type_check"),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'paused', 'completed', 'cancelled')",
            name="reminders_status_check",
        ),
        sa.CheckConstraint(
            "misfire_policy IN ('skip', 'fire_once', 'fire_all')", name="reminders_misfire_check"
        ),
        sa.CheckConstraint(
            "(type = 'one_time' AND trigger_at IS NOT NULL AND cron_expression IS NULL)"
            " OR (type = 'recurring' AND cron_expression IS NOT NULL AND trigger_at IS NULL)",
            name="reminders_trigger_check",
        ),
        postgresql_with={"fillfactor": 80},
    )
    op.create_index("reminders_user_id_idx", "reminders", ["user_id"])
    op.create_index("reminders_assistant_id_idx", "reminders", ["assistant_id"])
    op.create_index("reminders_status_idx", "reminders", ["status"])
    op.create_index("reminders_trigger_at_idx", "reminders", ["trigger_at"])
    op.create_index("reminders_user_id_status_idx", "reminders", ["user_id", "status"])
    op.create_index(
        "reminders_due_idx",
        "reminders",
        ["next_run_at"],
        postgresql_where=sa.text("status IN ('pending', 'active')"),
    )

    op.create_table(
        "deliveries",
        sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "reminder_id",
            pg.UUID(as_uuid=True),
            sa.ForeignKey("reminders.id", ondelete="CASCADE", name="deliveries_reminder_id_fkey"),
            nullable=False,
        ),
        sa.Column("scheduled_for", TS, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
        sa.Column("state", sa.Text, nullable=False, server_default="pending"),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("acked_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.CheckConstraint("state IN ('pending', 'sent', 'acked', 'dead')", name="deliveries_state_check"),
        sa.UniqueConstraint("reminder_id", "scheduled_for", name="deliveries_occurrence_key"),
    )
    op.create_index(
        "deliveries_pending_idx",
        "deliveries",
        ["created_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("reminder_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("details", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_index("audit_log_reminder_id_idx", "audit_log", ["reminder_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("deliveries")
    op.drop_table("reminders")
