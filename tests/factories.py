"""Insert reminders straight into the database, with sensible defaults for what is not given."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cryptography.fernet import Fernet

from core.crypto import PayloadCipher
from core.db import Connection, Pool
from core.events import Occurrence
from core.queries import queries
from core.store.reminders import NewReminder
from poller.claim import ClaimResult, Pushed, PushFirst, claim_batch

ASSISTANT_ID = uuid.UUID("3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11")
# One payload key per test session, fresh each run: the `settings` fixture uses it too.
TEST_PAYLOAD_KEY = Fernet.generate_key().decode()


def payload_cipher() -> PayloadCipher:
    """The cipher of the tests' `settings` (REMINDERS_PAYLOAD_KEYS = TEST_PAYLOAD_KEY)."""
    return PayloadCipher([TEST_PAYLOAD_KEY])


def new_reminder(next_run_at: datetime, *, payload: str = "{}", **fields: Any) -> NewReminder:
    """A row for create_reminders: a one-time reminder of ASSISTANT_ID at ``next_run_at``."""
    cipher = payload_cipher()
    values: dict[str, Any] = {
        "id": uuid.uuid4(), "user_id": 1, "assistant_id": ASSISTANT_ID,
        "created_by_assistant_id": ASSISTANT_ID, "type": "one_time", "trigger_at": next_run_at,
        "cron_expression": None, "timezone": "UTC", "payload_ciphertext": cipher.encrypt(payload),
        "status": "pending", "next_run_at": next_run_at, "misfire_policy": "fire_once",
        "misfire_grace_seconds": 60, "ack_required": True, "payload_key_id": cipher.key_id,
        "start_at": None, "until": None, "max_runs": None, "dst_gap": "shift",
        "dst_repeated": "first", "actor": "test", "details": "{}", "guess": None,
    }  # fmt: skip
    return NewReminder(**{**values, **fields})


async def _unconfirmed(_occurrences: list[Occurrence]) -> Pushed | None:
    return None


async def claim_unconfirmed(pool: Pool, now: datetime | None = None) -> ClaimResult:
    """A claim of up to 10 due reminders whose push Redis did not confirm: its deliveries are
    recorded pending, for the sweep, and its occurrences returned."""
    return await claim_batch(pool, 10, now, cipher=payload_cipher(), push_first=PushFirst(_unconfirmed, 60.0))


async def insert_reminder(
    pool: Pool | Connection,
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
    until: datetime | None = None,
    max_runs: int | None = None,
    cipher: PayloadCipher | None = None,
    dst_gap: str = "shift",
    dst_repeated: str = "first",
) -> uuid.UUID:
    """One reminder due at ``next_run_at``: recurring when a cron is given, else one-time.

    The payload is stored encrypted with ``cipher`` (default: the tests' settings key).
    """
    cipher = cipher or payload_cipher()
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
        cipher.encrypt(payload),
        "active" if recurring else "pending",
        next_run_at,
        misfire_policy,
        misfire_grace_seconds,
        ack_required,
        cipher.key_id,
        None,
        until,
        max_runs,
        dst_gap,
        dst_repeated,
    )
    return reminder_id


async def insert_many_due(pool: Pool, count: int, *, cron_expression: str = "0 10 * * *") -> None:
    """``count`` recurring reminders all due a second ago, in one statement (one shared payload)."""
    cipher = payload_cipher()
    await pool.execute(
        """
        INSERT INTO reminders (id, user_id, assistant_id, created_by_assistant_id, type,
                               cron_expression, timezone, payload_ciphertext, payload_key_id,
                               status, next_run_at)
        SELECT gen_random_uuid(), g, $2, $2, 'recurring', $3, 'UTC', $4, $5, 'active',
               now() - interval '1 second'
        FROM generate_series(1, $1) AS g
        """,
        count,
        ASSISTANT_ID,
        cron_expression,
        cipher.encrypt('{"n":1}'),
        cipher.key_id,
    )
