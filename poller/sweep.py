"""Find deliveries recorded but never confirmed by Redis, so they can be pushed again."""

from __future__ import annotations

from core.db import Pool
from core.events import Occurrence
from core.queries import queries
from poller.claim import occurrence_from_row


async def stale_pending(pool: Pool, older_than: float, limit: int) -> list[Occurrence]:
    """Pending deliveries at least ``older_than`` seconds old, rebuilt as occurrences."""
    rows = await pool.fetch(queries["stale_pending_deliveries"], older_than, limit)
    return [
        occurrence_from_row(
            row, event_id=row["event_id"], attempt=row["attempt"], triggered_at=row["triggered_at"]
        )
        for row in rows
    ]
