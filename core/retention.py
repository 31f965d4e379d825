"""Retention: deleting what the service no longer needs, in short statements beside a running service.

Expired idempotency keys always go (they answer nothing after 24 hours). Finished deliveries go
after ``REMINDERS_DELIVERY_RETENTION_DAYS``, audit entries after ``REMINDERS_AUDIT_RETENTION_DAYS``;
0 keeps them. Reminders themselves are never deleted (a cancelled one stays, for its history).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

import orjson

from core.db import Pool
from core.queries import queries

PRUNE_ACTOR = "prune"
DEFAULT_BATCH_SIZE = 5_000
# 1,024 blocks (8 MB) of deliveries hold about 65,000 rows: one statement deletes at most those,
# tens of milliseconds of work (1M deliveries, 120 MB, went in under a second on PostgreSQL 15),
# so no prune statement holds many locks or much WAL at once.
DELIVERY_BLOCKS_PER_STATEMENT = 1_024


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows one prune deleted, by table."""

    idempotency_keys: int = 0
    deliveries: int = 0
    audit_entries: int = 0


def _count(status: str) -> int:
    """The row count of a command tag such as ``DELETE 42``."""
    return int(status.rsplit(" ", 1)[-1])


async def prune_idempotency_keys(pool: Pool, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete every idempotency key older than 24 hours; how many went."""
    deleted = 0
    while True:
        batch = _count(await pool.execute(queries["prune_idempotency_keys"], batch_size))
        deleted += batch
        if batch < batch_size:
            return deleted


async def prune_deliveries(
    pool: Pool,
    days: int,
    *,
    blocks_per_statement: int = DELIVERY_BLOCKS_PER_STATEMENT,
    on_progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> int:
    """Delete finished deliveries created more than ``days`` days ago; how many went.

    Walks the table's blocks as they are when it starts; ``on_progress(done, total)`` after each
    slice, in blocks.
    """
    total = int(await pool.fetchval(queries["relation_blocks"], "deliveries"))
    deleted = 0
    for start in range(0, total, blocks_per_statement):
        end = min(start + blocks_per_statement, total)
        deleted += _count(await pool.execute(queries["prune_deliveries"], days, start, end))
        on_progress(end, total)
    return deleted


async def prune_audit_log(pool: Pool, days: int, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete audit entries older than ``days`` days, oldest first; how many went."""
    deleted, last_id = 0, 0
    while True:
        row = await pool.fetchrow(queries["prune_audit_log"], days, batch_size, last_id)
        assert row is not None  # an aggregate query always returns its row
        deleted += int(row["deleted"])
        if row["last_id"] is None or row["kept"]:
            return deleted
        last_id = int(row["last_id"])


@asynccontextmanager
async def prune_lock(pool: Pool) -> AsyncIterator[bool]:
    """Hold the prune lock while the block runs; yields False (and holds nothing) if another
    prune, a poller's or a command's, has it."""
    async with pool.acquire() as conn:
        held = bool(await conn.fetchval(queries["try_prune_lock"]))
        try:
            yield held
        finally:
            if held:
                await conn.fetchval(queries["prune_unlock"])


async def prune(
    pool: Pool,
    *,
    delivery_retention_days: int,
    audit_retention_days: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> Pruned | None:
    """Apply every retention rule (a retention of 0 days keeps that table whole); what went, or
    None, doing nothing, while another prune (a poller's or a command's) holds the lock.

    What went is itself audited (one ``prune`` entry), so the log says when it was cut and how.
    """
    async with prune_lock(pool) as held:
        if not held:
            return None
        return await _prune_held(
            pool,
            delivery_retention_days=delivery_retention_days,
            audit_retention_days=audit_retention_days,
            batch_size=batch_size,
            on_progress=on_progress,
        )


async def _prune_held(
    pool: Pool,
    *,
    delivery_retention_days: int,
    audit_retention_days: int,
    batch_size: int,
    on_progress: Callable[[int, int], None],
) -> Pruned:
    pruned = Pruned(
        idempotency_keys=await prune_idempotency_keys(pool, batch_size),
        deliveries=(
            await prune_deliveries(pool, delivery_retention_days, on_progress=on_progress)
            if delivery_retention_days > 0
            else 0
        ),
        audit_entries=(
            await prune_audit_log(pool, audit_retention_days, batch_size) if audit_retention_days > 0 else 0
        ),
    )
    if pruned.deliveries or pruned.audit_entries:
        details = {
            **asdict(pruned),
            "delivery_retention_days": delivery_retention_days,
            "audit_retention_days": audit_retention_days,
        }
        await pool.execute(
            queries["insert_audit"], PRUNE_ACTOR, "prune", None, orjson.dumps(details).decode()
        )
    return pruned
