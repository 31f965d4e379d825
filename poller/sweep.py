"""Deliveries that need another push: never confirmed by Redis, unacknowledged, or dead."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
import orjson

from core.crypto import PayloadCipher
from core.db import Connection, Pool
from core.events import Occurrence, format_time
from core.exceptions import PayloadCryptoError
from core.queries import queries
from core.states import DeliveryState
from poller.claim import POLLER_ACTOR, occurrence_from_row


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """Deliveries rebuilt as occurrences, and the reminders whose payload no key decrypts (their
    deliveries are left out: the caller quarantines those reminders)."""

    occurrences: list[Occurrence]
    undecryptable: list[UUID] = field(default_factory=list)


def _occurrences(rows: list[asyncpg.Record], cipher: PayloadCipher) -> Rebuilt:
    occurrences: list[Occurrence] = []
    undecryptable: list[UUID] = []
    for row in rows:
        try:
            payload = cipher.read(row["payload_ciphertext"], row["payload"])
        except PayloadCryptoError:
            undecryptable.append(row["reminder_id"])
            continue
        occurrences.append(
            occurrence_from_row(
                row,
                payload,
                event_id=row["event_id"],
                attempt=row["attempt"],
                triggered_at=row["triggered_at"],
                scheduled_for=row["scheduled_for"],
                late=row["late"],
            )
        )
    return Rebuilt(occurrences, undecryptable)


async def stale_pending(conn: Connection, cipher: PayloadCipher, older_than: float, limit: int) -> Rebuilt:
    """Pending deliveries unconfirmed for ``older_than`` seconds, rebuilt as occurrences and locked
    in ``conn``'s transaction: push them and mark them sent in it, so no stop slips in between."""
    rows = await conn.fetch(queries["stale_pending_deliveries"], older_than, limit)
    return _occurrences(rows, cipher)


async def stale_dead(pool: Pool, cipher: PayloadCipher, older_than: float, limit: int) -> Rebuilt:
    """Dead deliveries whose event is not yet confirmed in the dead-letter list."""
    return _occurrences(await pool.fetch(queries["stale_dead_deliveries"], older_than, limit), cipher)


@dataclass(frozen=True, slots=True)
class Redeliveries:
    """Unacknowledged events claimed for another attempt, and those that ran out of attempts."""

    retry: list[Occurrence]
    dead: list[Occurrence]
    # Reminders whose payload no key decrypts: their rows were claimed but are in neither list.
    undecryptable: list[UUID] = field(default_factory=list)


async def claim_redeliveries(
    conn: Connection, cipher: PayloadCipher, limit: int, max_attempts: int
) -> Redeliveries:
    """Move up to ``limit`` overdue sent deliveries to their next attempt (or to dead), audited, in
    ``conn``'s transaction; the retries stay locked there for their push and mark_sent."""
    rows = await conn.fetch(queries["claim_redeliveries"], limit, max_attempts)
    if rows:
        await conn.execute(
            queries["insert_audits"],
            POLLER_ACTOR,
            ["dead_letter" if r["state"] == DeliveryState.DEAD else "redeliver" for r in rows],
            [r["reminder_id"] for r in rows],
            [
                orjson.dumps(
                    {
                        "event_id": str(r["event_id"]),
                        "attempt": r["attempt"],
                        "scheduled_for": format_time(r["scheduled_for"]),
                    }
                ).decode()
                for r in rows
            ],
        )
    retry = _occurrences([r for r in rows if r["state"] == DeliveryState.PENDING], cipher)
    dead = _occurrences([r for r in rows if r["state"] == DeliveryState.DEAD], cipher)
    return Redeliveries(retry.occurrences, dead.occurrences, retry.undecryptable + dead.undecryptable)
