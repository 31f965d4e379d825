"""Drop the foreign key from deliveries to reminders: its check ran once per fire.

Every fire inserts a delivery, and the key's trigger looked up (and KEY SHARE locked) the reminder
row that the same statement had just claimed and updated: about 6 us of PostgreSQL per fire in the
burst benchmark, guarding nothing. Deliveries are only written by record_fires, from reminders it
holds locked, and no reminder is ever deleted (DELETE /reminders/{id} cancels, the row stays for
audit), so the key had nothing left to cascade or refuse.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("deliveries_reminder_id_fkey", "deliveries", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "deliveries_reminder_id_fkey", "deliveries", "reminders", ["reminder_id"], ["id"], ondelete="CASCADE"
    )
