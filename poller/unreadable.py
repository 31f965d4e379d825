"""Rows a fetch cannot turn into Python (a time beyond year 9999, a payload no key opens) are set
aside as quarantined, by SQL that can still compare them, so they stop no batch of the others."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from core.db import Connection, Pool
from core.queries import queries

# What asyncpg raises while decoding a value Python cannot hold (a timestamp outside years 1 to
# 9999 is an OverflowError); raised by the fetch, after the statement ran: the transaction goes on.
DECODE_ERRORS = (OverflowError, ValueError)
# Each round quarantines the unreadable rows of one batch; rows behind them may move into the next.
MAX_ROUNDS = 10


def describe(exc: BaseException) -> str:
    """An error's type and the start of its message, for the audit (never a payload)."""
    return f"{type(exc).__name__}: {exc}"[:200]


async def audit_quarantined(
    conn: Connection | Pool, actor: str, reminder_ids: Sequence[UUID], reason: str, error: str
) -> None:
    """One quarantine audit entry per reminder, as the claim writes them."""
    if reminder_ids:
        details = orjson.dumps({"reason": reason, "error": error}).decode()
        await conn.execute(
            queries["insert_audits"],
            actor,
            ["quarantine"] * len(reminder_ids),
            list(reminder_ids),
            [details] * len(reminder_ids),
        )


async def fetch_due(
    conn: Connection, now: datetime | None, batch_size: int, actor: str
) -> tuple[list[asyncpg.Record], list[UUID]]:
    """claim_due's batch, locked in ``conn``'s transaction, and the reminders quarantined (and
    audited, reason ``decode``) because the fetch could not decode them."""
    quarantined: list[UUID] = []
    for _ in range(MAX_ROUNDS):
        try:
            return await conn.fetch(queries["claim_due"], now, batch_size), quarantined
        except DECODE_ERRORS as exc:
            ids = [r["id"] for r in await conn.fetch(queries["quarantine_unreadable_due"], now, batch_size)]
            if not ids:
                raise  # not a time out of range: nothing here knows how to set it aside
            await audit_quarantined(conn, actor, ids, "decode", describe(exc))
            quarantined += ids
    return await conn.fetch(queries["claim_due"], now, batch_size), quarantined


async def quarantine_unreadable_delivering(pool: Pool, actor: str, error: BaseException) -> list[UUID]:
    """After a sweep or redelivery fetch failed to decode: quarantine (and audit) the reminders
    with deliveries in flight whose own times Python cannot hold. Empty: the error is another."""
    async with pool.acquire() as conn, conn.transaction():
        ids = [r["id"] for r in await conn.fetch(queries["quarantine_unreadable_delivering"])]
        await audit_quarantined(conn, actor, ids, "decode", describe(error))
    return ids


async def quarantine_delivering(
    pool: Pool, actor: str, reminder_ids: Sequence[UUID], error: str
) -> list[UUID]:
    """Quarantine (and audit, reason ``payload``) reminders whose deliveries could not be rebuilt,
    in a transaction of their own: no delivery row is held, so no lock order against the API."""
    async with pool.acquire() as conn, conn.transaction():
        ids = [r["id"] for r in await conn.fetch(queries["quarantine_delivering"], list(reminder_ids))]
        await audit_quarantined(conn, actor, ids, "payload", error)
    return ids
