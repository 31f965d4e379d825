"""Table metadata for alembic; the running code talks SQL from ``sql/`` through asyncpg."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from core.states import (
    DELIVERY_STATES,
    DST_GAP_POLICIES,
    DST_REPEATED_POLICIES,
    MISFIRE_POLICIES,
    REMINDER_STATUSES,
    REMINDER_TYPES,
)

metadata = sa.MetaData()


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


reminders = sa.Table(
    "reminders",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("assistant_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("created_by_assistant_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("trigger_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("cron_expression", sa.Text, nullable=True),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    # Plaintext of rows written before payload encryption only; new rows store ciphertext alone.
    sa.Column("payload", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("next_run_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("last_triggered_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("misfire_policy", sa.Text, nullable=False, server_default="fire_once"),
    sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("ack_required", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("misfire_grace_seconds", sa.Integer, nullable=False, server_default="60"),
    # A Fernet token of the payload, and the fingerprint of the key it was made with.
    sa.Column("payload_ciphertext", pg.BYTEA, nullable=True),
    sa.Column("payload_key_id", sa.Text, nullable=True),
    sa.CheckConstraint("misfire_grace_seconds >= 0", name="reminders_misfire_grace_check"),
    # End conditions (recurring only): fire no earlier than start_at, no later than until, and at
    # most max_runs times; runs_count is how many occurrences went out so far.
    sa.Column("start_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("until", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("max_runs", sa.Integer, nullable=True),
    sa.Column("runs_count", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint("max_runs IS NULL OR max_runs > 0", name="reminders_max_runs_check"),
    # DST policy (see core.cron.next_fire): a fire in a skipped local hour, one in a repeated hour.
    sa.Column("dst_gap", sa.Text, nullable=False, server_default="shift"),
    sa.Column("dst_repeated", sa.Text, nullable=False, server_default="first"),
    sa.CheckConstraint(_in("dst_gap", DST_GAP_POLICIES), name="reminders_dst_gap_check"),
    sa.CheckConstraint(_in("dst_repeated", DST_REPEATED_POLICIES), name="reminders_dst_repeated_check"),
    sa.CheckConstraint(
        "payload IS NOT NULL OR payload_ciphertext IS NOT NULL", name="reminders_payload_check"
    ),
    sa.CheckConstraint(_in("type", REMINDER_TYPES), name="reminders_type_check"),
    sa.CheckConstraint(_in("status", REMINDER_STATUSES), name="reminders_status_check"),
    sa.CheckConstraint(_in("misfire_policy", MISFIRE_POLICIES), name="reminders_misfire_check"),
    sa.CheckConstraint(
        "(type = 'one_time' AND trigger_at IS NOT NULL AND cron_expression IS NULL)"
        " OR (type = 'recurring' AND cron_expression IS NOT NULL AND trigger_at IS NULL)",
        name="reminders_trigger_check",
    ),
    # Few indexes on purpose: no fire is a HOT update (next_run_at is indexed), so every fire
    # writes an entry into each of them (migration 0008 dropped three no query used).
    sa.Index("reminders_assistant_id_idx", "assistant_id"),
    sa.Index("reminders_user_id_status_idx", "user_id", "status"),
    # The queue: only claimable rows are indexed, so the claim cost does not grow with history.
    sa.Index(
        "reminders_due_idx",
        "next_run_at",
        postgresql_where=sa.text("status IN ('pending', 'active')"),
    ),
    # Room on each page for HOT updates of the hot columns (status, next_run_at...).
    postgresql_with={"fillfactor": 80},
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
    # No foreign key (migration 0009): its check cost a lookup of the just-claimed reminder per
    # fire; deliveries are only recorded from claimed rows, and reminders are never deleted.
    sa.Column("reminder_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("scheduled_for", sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, server_default="1"),
    sa.Column("state", sa.Text, nullable=False, server_default="pending"),
    sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("sent_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("acked_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    # When a sent delivery with no ack is pushed again (NULL: no ack expected).
    sa.Column("next_attempt_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.Column("late", sa.Boolean, nullable=False, server_default=sa.false()),
    # Set once a dead delivery's event is in the dead-letter list; NULL on a dead one means "push it".
    sa.Column("dead_lettered_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.CheckConstraint(_in("state", DELIVERY_STATES), name="deliveries_state_check"),
    sa.UniqueConstraint("reminder_id", "scheduled_for", name="deliveries_occurrence_key"),
    sa.Index("deliveries_pending_idx", "created_at", postgresql_where=sa.text("state = 'pending'")),
    sa.Index(
        "deliveries_redelivery_idx",
        "next_attempt_at",
        postgresql_where=sa.text("state = 'sent' AND next_attempt_at IS NOT NULL"),
    ),
    sa.Index(
        "deliveries_dead_letter_idx",
        "updated_at",
        postgresql_where=sa.text("state = 'dead' AND dead_lettered_at IS NULL"),
    ),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column("at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("reminder_id", pg.UUID(as_uuid=True), nullable=True),
    sa.Column("details", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Index("audit_log_reminder_id_idx", "reminder_id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    # The first characters of the secret, shown in listings and used to find candidate rows.
    sa.Column("prefix", sa.Text, nullable=False),
    # SHA-256 of the whole secret; the secret itself is shown once and never stored.
    sa.Column("secret_hash", sa.LargeBinary, nullable=False),
    sa.Column("scopes", pg.ARRAY(sa.Text), nullable=False),
    # NULL: every assistant (service and admin keys).
    sa.Column("assistant_ids", pg.ARRAY(pg.UUID(as_uuid=True)), nullable=True),
    sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("revoked_at", sa.TIMESTAMP(timezone=True), nullable=True),
    sa.UniqueConstraint("secret_hash", name="api_keys_secret_hash_key"),
    sa.Index("api_keys_prefix_idx", "prefix"),
)

# A create retried with the same Idempotency-Key (per credential, for 24 hours) returns the first
# reminder instead of making a second one.
# Each assistant's live reminders (LIVE_STATUSES), kept exact by statement triggers on reminders
# (migration 0012), which also check the live cap of a create (create_reminders).
assistant_live_counts = sa.Table(
    "assistant_live_counts",
    metadata,
    sa.Column("assistant_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("live", sa.BigInteger, nullable=False, server_default="0"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("credential_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    # SHA-256 of the request body: the same key with another body is refused.
    sa.Column("request_hash", sa.LargeBinary, nullable=False),
    sa.Column("reminder_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("idempotency_keys_created_at_idx", "created_at"),
)
