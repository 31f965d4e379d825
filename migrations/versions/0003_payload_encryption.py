"""Payload encryption at rest: ciphertext and key id columns; plaintext only for legacy rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("reminders", sa.Column("payload_ciphertext", pg.BYTEA, nullable=True))
    op.add_column("reminders", sa.Column("payload_key_id", sa.Text, nullable=True))
    op.alter_column("reminders", "payload", existing_type=sa.Text, nullable=True)
    op.create_check_constraint(
        "reminders_payload_check",
        "reminders",
        "payload IS NOT NULL OR payload_ciphertext IS NOT NULL",
    )


def downgrade() -> None:
    # Ciphertext cannot be decrypted here (the keys are not in the database): refuse rather than
    # lose payloads.
    encrypted = (
        op.get_bind().execute(sa.text("SELECT count(*) FROM reminders WHERE payload IS NULL")).scalar_one()
    )
    if encrypted:
        raise RuntimeError(
            f"{encrypted} reminders hold only an encrypted payload; downgrading below 0003 would lose them"
        )
    op.drop_constraint("reminders_payload_check", "reminders")
    op.alter_column("reminders", "payload", existing_type=sa.Text, nullable=False)
    op.drop_column("reminders", "payload_key_id")
    op.drop_column("reminders", "payload_ciphertext")
