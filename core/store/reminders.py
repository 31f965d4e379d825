"""Reminders' creates and reads by id: the named queries, and the batchers that let concurrent
requests of one process share one statement (core/store/batching.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any
from uuid import UUID

import asyncpg

from core.db import Connection, Pool
from core.exceptions import UNREADABLE, UNREADABLE_DETAIL, UnreadableRow
from core.queries import named, queries
from core.store.batching import MAX_BATCH, Batcher

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


Write = Callable[[Pool, Sequence[NewReminder], int], Awaitable[dict[UUID, asyncpg.Record]]]


class Creates:
    """New reminders within ``live_cap`` (0: none): concurrent ones on a pool share statements,
    one in a caller's transaction goes alone. ``write`` is create_reminders (tests count it)."""

    def __init__(self, live_cap: int = 0, write: Write | None = None, max_batch: int = MAX_BATCH) -> None:
        self.live_cap = live_cap
        self._write: Write = write or create_reminders
        self._batcher: Batcher[NewReminder] = Batcher(self._run, lambda row: row.id, max_batch)

    async def create(self, db: Pool | Connection, row: NewReminder) -> asyncpg.Record | None:
        """Write ``row``; the reminder written, or None (refused: past the cap, or a wrong guess)."""
        if isinstance(db, asyncpg.Pool):
            return await self._batcher.submit(db, row)
        return (await create_reminders(db, [row], self.live_cap)).get(row.id)

    async def _run(self, pool: Pool, rows: Sequence[NewReminder]) -> dict[UUID, asyncpg.Record]:
        return await self._write(pool, rows, self.live_cap)


async def fetch_reminders(db: Pool | Connection, ids: Sequence[UUID]) -> dict[UUID, asyncpg.Record]:
    """The reminders with these ids that exist, by id (UnreadableRow: one holds a time Python
    cannot decode)."""
    try:
        records = await db.fetch(queries["get_reminders"], list(ids))
    except UNREADABLE as exc:
        raise UnreadableRow(UNREADABLE_DETAIL) from exc
    return {record["id"]: record for record in records}


class Reads:
    """Reads by id: concurrent ones on a pool share one SELECT."""

    def __init__(self) -> None:
        self._batcher: Batcher[UUID] = Batcher(self._run, lambda reminder_id: reminder_id)

    async def get(self, pool: Pool, reminder_id: UUID) -> asyncpg.Record | None:
        """The reminder, or None if there is none."""
        return await self._batcher.submit(pool, reminder_id)

    async def _run(self, pool: Pool, ids: Sequence[UUID]) -> dict[UUID, asyncpg.Record]:
        return await fetch_reminders(pool, ids)
