"""Statements shared by concurrent requests: one round trip (and one commit) for many.

At thousands of requests a second, an API process spent about a quarter of its CPU writing
one-row statements to PostgreSQL (a write() that wakes the server is dear), and PostgreSQL most of
its own on a statement (and a commit) per request. A create without an Idempotency-Key is one
statement already (the row and its audit row), and a read by id is one too, so those of concurrent
requests go in one statement instead: while one batch is in flight, the items that arrive wait for
the next, so batches grow with the load and a lone request goes at once. Each request still gets
its own row back (None: not found, or a create whose clock guess was refused; see
``create_reminders`` in sql/reminders.sql). The batchers of reminders' creates and reads are in
core/store/reminders.py.

A batch that PostgreSQL refuses for what is in a row (not for the connection) is tried again item
by item, so one bad row fails its own request only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg

from core.db import Pool
from core.exceptions import UnreadableRow

# Bounds one statement's size (and the wait of the items at the end of a long queue).
MAX_BATCH = 100
Item = TypeVar("Item")
Run = Callable[[Pool, Sequence[Item]], Awaitable[Mapping[UUID, asyncpg.Record]]]
# An item with the future its request awaits.
Waiting = tuple[Item, "asyncio.Future[asyncpg.Record | None]"]


class Batcher(Generic[Item]):
    """Runs the items of concurrent requests of one process together, ``run`` once per batch.

    ``run`` answers with the rows it produced by reminder id, and ``key`` gives an item's id.
    """

    def __init__(self, run: Run[Item], key: Callable[[Item], UUID], max_batch: int = MAX_BATCH) -> None:
        self._run = run
        self._key = key
        self._max_batch = max_batch
        self._waiting: list[Waiting[Item]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, pool: Pool, item: Item) -> asyncpg.Record | None:
        """Run ``item`` with whatever else is waiting; its row, or None if there is none."""
        done: asyncio.Future[asyncpg.Record | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._flusher is None:
            # Not awaited by the caller: the batch outlives a cancelled request, whose item is in it.
            self._flusher = asyncio.ensure_future(self._flush(pool))
        return await done

    async def _flush(self, pool: Pool) -> None:
        batch: list[Waiting[Item]] = []
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._write(pool, batch)
                batch = []
        except BaseException as exc:
            _fail(batch + self._waiting, exc)
            self._waiting.clear()
            raise
        finally:
            self._flusher = None

    async def _write(self, pool: Pool, batch: list[Waiting[Item]]) -> None:
        try:
            rows = await self._run(pool, [item for item, _ in batch])
        except (asyncpg.PostgresError, UnreadableRow) as exc:
            if len(batch) > 1 and _about_a_row(exc):
                for one in batch:
                    await self._write(pool, [one])
            else:
                _fail(batch, exc)
            return
        except Exception as exc:  # the connection, the pool: every request of the batch hears of it
            _fail(batch, exc)
            return
        for item, done in batch:
            if not done.done():
                done.set_result(rows.get(self._key(item)))


def _about_a_row(exc: asyncpg.PostgresError | UnreadableRow) -> bool:
    # SQLSTATE classes 22 (data exception) and 23 (integrity constraint): what one row can cause;
    # so can a row that does not decode, which must not fail the other reads of its batch.
    if isinstance(exc, UnreadableRow):
        return True
    return str(getattr(exc, "sqlstate", "") or "")[:2] in ("22", "23")


def _fail(batch: Sequence[Waiting[Any]], exc: BaseException) -> None:
    for _, done in batch:
        if done.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(exc)
