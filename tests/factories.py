"""Insert reminders straight into the database, with sensible defaults for what is not given."""

from __future__ import annotations

import uuid
from datetime import datetime

from core.db import Pool
from core.queries import queries

ASSISTANT_ID = uuid.UUID("3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11")


async def insert_reminder(
    pool: Pool,
    *,
    next_run_at: datetime,
    cron_expression: str | None = None,
    timezone: str = "UTC",
    user_id: int = 123,
    assistant_id: uuid.UUID = ASSISTANT_ID,
    payload: str = '{"text":"Meeting"}',
    misfire_policy: str = "fire_once",
    misfire_grace_seconds: int = 60,
    ack_required: bool = True,
) -> uuid.UUID:
    """One reminder due at ``next_run_at``: recurring when a cron is given, else one-time."""
    reminder_id = uuid.uuid4()
    recurring = cron_expression is not None
    await pool.execute(
        queries["insert_reminder"],
        reminder_id,
        user_id,
        assistant_id,
        assistant_id,
        "recurring" if recurring else "one_time",
        None if recurring else next_run_at,
        cron_expression,
        timezone,
        payload,
        "active" if recurring else "pending",
        next_run_at,
        misfire_policy,
        misfire_grace_seconds,
        ack_required,
    )
    return reminder_id


async def insert_many_due(pool: Pool, count: int, *, cron_expression: str = "0 10 * * *") -> None:
    """``count`` recurring reminders all due a second ago, in one statement."""
    await pool.execute(
        """
        INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type,
                               cron_expression, timezone, payload, status, next_run_at)
        SELECT gen_random_uuid(), g, $2, $2, 'recurring', $3, 'UTC', '{"n":' || g || '}', 'active',
               now() - interval '1 second'
        FROM generate_series(1, $1) AS g
        """,
        count,
        ASSISTANT_ID,
        cron_expression,
    )
