"""Writes of new reminders: ``create_reminders`` and ``create_reminders_within_cap``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

import asyncpg

from core.db import Connection, Pool
from core.queries import named

# The check_violation of the insert's trigger when a create would pass its assistant's live cap.
LIVE_CAP = "assistant_live_cap"


@dataclass(frozen=True, slots=True)
class NewReminder:
    """One reminder to write, with its "create" audit row; each field is an array of the queries."""

    id: UUID
    user_id: int
    assistant_id: UUID
    created_by_assistant_id: UUID | None
    type: str
    trigger_at: datetime | None
    cron_expression: str | None
    timezone: str
    payload_ciphertext: bytes
    status: str
    next_run_at: datetime
    misfire_policy: str
    misfire_grace_seconds: int
    ack_required: bool
    payload_key_id: str
    start_at: datetime | None
    until: datetime | None
    max_runs: int | None
    dst_gap: str
    dst_repeated: str
    # The audit row: who, and its JSON details.
    actor: str
    details: str
    # The moment next_run_at was computed from on the API's clock, or None: computed from the
    # database's (the queries write the row only if nothing fires between the guess and now()).
    guess: datetime | None


_FIELDS = tuple(f.name for f in fields(NewReminder))
_ROW = attrgetter(*_FIELDS)


def _params(rows: Sequence[NewReminder], live_cap: int) -> dict[str, Any]:
    """The queries' named parameters: one array per field, and the statement's cap."""
    columns = zip(*map(_ROW, rows), strict=True)
    return {**dict(zip(_FIELDS, map(list, columns), strict=True)), "live_cap": live_cap}


async def create_reminders(
    db: Pool | Connection, rows: Sequence[NewReminder], live_cap: int = 0
) -> dict[UUID, asyncpg.Record]:
    """Write ``rows`` in one statement, each within its assistant's ``live_cap`` (0: none); the
    reminders written, by id (a row past the cap, or with a wrong guess, is missing).

    On a pool, optimistic first: far from the cap, concurrent creates of an assistant then hold
    its counter locked only from the insert's trigger to the commit, not for the whole statement;
    a statement that would pass the cap is refused whole and runs again exact. On a connection
    (the caller's transaction, which a refused statement would abort) exact at once.
    """
    params = _params(rows, live_cap)
    if isinstance(db, asyncpg.Pool):
        try:
            records = await _fetch(db, "create_reminders", params)
        except asyncpg.CheckViolationError as exc:
            if exc.constraint_name != LIVE_CAP:
                raise
            records = await _fetch(db, "create_reminders_within_cap", params)
    else:
        records = await _fetch(db, "create_reminders_within_cap", params)
    return {record["id"]: record for record in records}


async def _fetch(db: Pool | Connection, name: str, params: dict[str, Any]) -> list[asyncpg.Record]:
    query = named[name]
    return await db.fetch(query.sql, *query.args(params))
