"""Creates that arrive together share one INSERT: one round trip and one commit for many.

At thousands of creates a second, an API process spent about a quarter of its CPU writing
single-row inserts to PostgreSQL, and PostgreSQL most of its own on a statement and a commit per
row. A create without an Idempotency-Key is one statement already (the row and its audit row), so
rows of concurrent creates can go in one statement as well: while one batch is in flight, the
creates that arrive wait for the next, so batches grow with the load and a lone create goes at
once. Each create still gets its own row back, or None when its clock guess was refused (see
``create_reminders`` in sql/reminders.sql).

A batch that PostgreSQL refuses for what is in a row (not for the connection) is tried again row
by row, so one bad row fails its own create only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.db import Pool
from core.queries import queries

# Bounds one statement's size (and the wait of the rows at the end of a long queue).
MAX_BATCH = 100
# One value per parameter of create_reminders, in its order; the first is the reminder id.
CreateRow = tuple[Any, ...]
Connection = asyncpg.Connection | PoolConnectionProxy
Waiting = tuple[CreateRow, "asyncio.Future[asyncpg.Record | None]"]


class CreateBatcher:
    """Groups the rows of concurrent creates of one process into shared INSERTs."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self._max_batch = max_batch
        self._waiting: list[Waiting] = []
        self._flusher: asyncio.Task[None] | None = None

    async def insert(self, pool: Pool, row: CreateRow) -> asyncpg.Record | None:
        """Write ``row`` with whatever else is waiting; the new reminder, or None if refused."""
        done: asyncio.Future[asyncpg.Record | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, done))
        if self._flusher is None:
            # Not awaited by the caller: the batch outlives a cancelled create, whose row is in it.
            self._flusher = asyncio.ensure_future(self._flush(pool))
        return await done

    async def _flush(self, pool: Pool) -> None:
        batch: list[Waiting] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await _write(pool, batch)
                batch = []
        except BaseException as exc:
            _fail(batch + self._waiting, exc)
            self._waiting.clear()
            raise
        finally:
            self._flusher = None


async def _write(pool: Pool, batch: list[Waiting]) -> None:
    try:
        written = await insert_rows(pool, [row for row, _ in batch])
    except asyncpg.PostgresError as exc:
        if len(batch) > 1 and _about_a_row(exc):
            for one in batch:
                await _write(pool, [one])
        else:
            _fail(batch, exc)
        return
    except Exception as exc:  # the connection, the pool: every create of the batch hears of it
        _fail(batch, exc)
        return
    for row, done in batch:
        if not done.done():
            done.set_result(written.get(row[0]))


async def insert_rows(db: Pool | Connection, rows: Sequence[CreateRow]) -> dict[UUID, asyncpg.Record]:
    """Run create_reminders on ``rows`` (on a pool, or in a transaction's connection); the
    reminders written, by id."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    records = await db.fetch(queries["create_reminders"], *columns)
    return {record["id"]: record for record in records}


def _about_a_row(exc: asyncpg.PostgresError) -> bool:
    # SQLSTATE classes 22 (data exception) and 23 (integrity constraint): what one row can cause.
    return str(getattr(exc, "sqlstate", "") or "")[:2] in ("22", "23")


def _fail(batch: list[Waiting], exc: BaseException) -> None:
    for _, done in batch:
        if done.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(exc)
