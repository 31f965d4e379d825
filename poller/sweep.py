"""Find deliveries recorded but never confirmed by Redis, so they can be pushed again."""

from __future__ import annotations

from core.db import Pool
from core.events import Occurrence
from core.queries import queries


async def stale_pending(pool: Pool, older_than: float, limit: int) -> list[Occurrence]:
    """Pending deliveries at least ``older_than`` seconds old, rebuilt as occurrences."""
    rows = await pool.fetch(queries["stale_pending_deliveries"], older_than, limit)
    return [
        Occurrence(
            event_id=row["event_id"],
            attempt=row["attempt"],
            reminder_id=row["reminder_id"],
            assistant_id=row["assistant_id"],
            user_id=row["user_id"],
            reminder_type=row["type"],
            payload_json=row["payload"],
            scheduled_for=row["scheduled_for"],
            triggered_at=row["triggered_at"],
            created_at=row["created_at"],
        )
        for row in rows
    ]
