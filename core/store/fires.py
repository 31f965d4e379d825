"""What a claim writes: ``record_fires`` (the reminders moved on, their deliveries, the fire audit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from core.db import Connection
from core.queries import named


@dataclass(frozen=True, slots=True)
class RecordFires:
    """record_fires' parameters: per claimed reminder, per occurrence sent, and for the statement."""

    # Each claimed reminder, aligned: its next fire, its status, how many occurrences it sent.
    reminder_ids: Sequence[UUID]
    next_run_at: Sequence[datetime | None]
    status: Sequence[str]
    fired: Sequence[int]
    # Each occurrence sent, aligned: a delivery to write, audited as a fire when it is new.
    event_ids: Sequence[UUID]
    event_reminder_ids: Sequence[UUID]
    scheduled_for: Sequence[datetime]
    late: Sequence[bool]
    ack_required: Sequence[bool]
    fire_details: Sequence[str]
    # The claim's moment (the database clock), the audit actor, whether the events are already
    # in Redis (the deliveries start sent), and the ack timeout that sets their redelivery.
    fired_at: datetime
    actor: str
    pushed: bool
    ack_timeout: float


async def record_fires(conn: Connection, params: RecordFires) -> list[asyncpg.Record]:
    """Write the claim; the event ids of the deliveries that were new (the others were recorded)."""
    query = named["record_fires"]
    return await conn.fetch(query.sql, *query.args(params))
