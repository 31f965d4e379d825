"""Claim a batch of due reminders and record their occurrences, in one short transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from core.db import Pool
from core.events import Occurrence, event_id_for
from core.queries import queries
from poller.advance import advance


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What one claim did: how many rows it locked, and the new occurrences to push."""

    claimed: int
    occurrences: list[Occurrence]


async def claim_batch(pool: Pool, batch_size: int, now: datetime | None = None) -> ClaimResult:
    """Lock up to ``batch_size`` due reminders, move them on, and write their deliveries.

    No Redis call happens inside the transaction; the caller pushes what is returned after the
    commit, and a crash in between leaves pending deliveries that the sweep pushes again.
    """
    async with pool.acquire() as conn, conn.transaction():
        rows: list[asyncpg.Record] = await conn.fetch(queries["claim_due"], now, batch_size)
        if not rows:
            return ClaimResult(0, [])
        fired_at: datetime = rows[0]["db_now"]
        ids, next_runs, statuses, event_ids, scheduled = [], [], [], [], []
        for row in rows:
            state = advance(
                reminder_type=row["type"],
                cron_expression=row["cron_expression"],
                timezone=row["timezone"],
                misfire_policy=row["misfire_policy"],
                scheduled_for=row["scheduled_for"],
                db_now=fired_at,
            )
            ids.append(row["reminder_id"])
            next_runs.append(state.next_run_at)
            statuses.append(state.status)
            event_ids.append(event_id_for(row["reminder_id"], row["scheduled_for"]))
            scheduled.append(row["scheduled_for"])
        inserted = await conn.fetch(
            queries["record_fires"], ids, next_runs, statuses, event_ids, scheduled, fired_at
        )
    new = {record["event_id"] for record in inserted}
    occurrences = [
        occurrence_from_row(row, event_id=event_id, attempt=1, triggered_at=fired_at)
        for row, event_id in zip(rows, event_ids, strict=True)
        if event_id in new
    ]
    return ClaimResult(len(rows), occurrences)


def occurrence_from_row(
    row: asyncpg.Record, *, event_id: UUID, attempt: int, triggered_at: datetime
) -> Occurrence:
    """An occurrence from a row carrying the reminder's columns (reminder_id, scheduled_for...)."""
    return Occurrence(
        event_id=event_id,
        attempt=attempt,
        reminder_id=row["reminder_id"],
        assistant_id=row["assistant_id"],
        user_id=row["user_id"],
        reminder_type=row["type"],
        payload_json=row["payload"],
        scheduled_for=row["scheduled_for"],
        triggered_at=triggered_at,
        created_at=row["created_at"],
    )
