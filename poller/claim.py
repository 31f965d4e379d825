"""Claim a batch of due reminders and record their occurrences, in one short transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from core.crypto import PayloadCipher
from core.db import Connection, Pool
from core.events import Occurrence, event_id_for, format_time
from core.exceptions import PayloadCryptoError
from core.queries import queries
from core.store.fires import RecordFires, record_fires
from poller.advance import Due, Fire, plan
from poller.unreadable import fetch_due

POLLER_ACTOR = "poller"


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What one claim did: rows locked, new occurrences, late occurrences skipped, when Redis
    confirmed the push made inside the claim (None: recorded pending, still to push), and the
    reasons of the rows set aside."""

    claimed: int
    occurrences: list[Occurrence]
    skipped: int = 0
    pushed_at: datetime | None = None
    # Each reminder set aside as quarantined, with why: "plan", "payload" or "decode".
    quarantined: list[tuple[UUID, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Pushed:
    """Redis confirmed a claim's events at ``at`` (the database clock). ``earlier`` names those a
    claim cut short between its push and its commit had already pushed, with their triggered_at."""

    at: datetime
    earlier: dict[UUID, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PushFirst:
    """Push a batch's events inside its claim, so its deliveries are recorded as sent at once.

    ``push`` returns what Redis confirmed, or None when it could not push the events (they are
    then recorded pending, for the sweep); ``ack_timeout`` sets the redelivery time of those that
    expect an ack.
    """

    push: Callable[[list[Occurrence]], Awaitable[Pushed | None]]
    ack_timeout: float


@dataclass
class _Batch:
    """Column arrays for record_fires and insert_audits, filled row by row."""

    ids: list[UUID] = field(default_factory=list)
    next_runs: list[datetime | None] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    fired: list[int] = field(default_factory=list)
    event_ids: list[UUID] = field(default_factory=list)
    event_reminders: list[UUID] = field(default_factory=list)
    scheduled: list[datetime] = field(default_factory=list)
    late: list[bool] = field(default_factory=list)
    ack_required: list[bool] = field(default_factory=list)
    # The fire audit details, aligned with event_ids (record_fires writes those recorded).
    fire_details: list[str] = field(default_factory=list)
    audit_actions: list[str] = field(default_factory=list)
    audit_reminders: list[UUID] = field(default_factory=list)
    audit_details: list[str] = field(default_factory=list)

    # Aligned with event_ids: the row and fire behind each occurrence to record, and its payload.
    sources: list[tuple[asyncpg.Record, Fire, str]] = field(default_factory=list)

    # Rows set aside (status quarantined): what the poller could not plan or encode.
    quarantined: list[UUID] = field(default_factory=list)
    quarantine_reasons: list[tuple[UUID, str]] = field(default_factory=list)

    def add_row(self, row: asyncpg.Record, fired_at: datetime, cipher: PayloadCipher) -> None:
        """Plan one claimed row and add what it does to the batch; set it aside if it cannot be."""
        reminder_id: UUID = row["reminder_id"]
        try:
            outcome = plan(Due.from_row(row), fired_at)
            # Decrypted here, not after the plan is recorded: a payload no key opens is found
            # while its row can still be set aside alone (the same one decryption per fire).
            payload = cipher.read(row["payload_ciphertext"], row["payload"]) if outcome.fires else ""
        except PayloadCryptoError as exc:
            self.quarantine(reminder_id, "payload", type(exc).__name__)
            return
        except Exception as exc:  # whatever the row holds, it must not stop the other rows
            self.quarantine(reminder_id, "plan", _describe(exc))
            return
        if outcome.ended is not None:
            self.audit(
                "complete", reminder_id, reason=outcome.ended, runs=row["runs_count"] + len(outcome.fires)
            )
        self.ids.append(reminder_id)
        self.next_runs.append(outcome.next_run_at)
        self.statuses.append(outcome.status)
        self.fired.append(len(outcome.fires))
        for fire in outcome.fires:
            event_id = event_id_for(reminder_id, fire.scheduled_for)
            self.event_ids.append(event_id)
            self.event_reminders.append(reminder_id)
            self.scheduled.append(fire.scheduled_for)
            self.late.append(fire.late)
            self.ack_required.append(row["ack_required"])
            self.fire_details.append(_fire_details(event_id, fire))
            self.sources.append((row, fire, payload))
        for missed in outcome.skipped:
            self.audit(
                "skip",
                reminder_id,
                scheduled_for=format_time(missed),
                policy=row["misfire_policy"],
                reason="misfire",
            )
        if outcome.truncated:
            self.audit(
                "misfire_truncated",
                reminder_id,
                reason="more missed occurrences than the limit; the series restarts from now",
                next_run_at=format_time(outcome.next_run_at) if outcome.next_run_at else None,
            )

    def quarantine(self, reminder_id: UUID, reason: str, error: str) -> None:
        self.quarantined.append(reminder_id)
        self.quarantine_reasons.append((reminder_id, reason))
        self.audit("quarantine", reminder_id, reason=reason, error=error)

    def audit(self, action: str, reminder_id: UUID, **details: object) -> None:
        self.audit_actions.append(action)
        self.audit_reminders.append(reminder_id)
        self.audit_details.append(orjson.dumps(details).decode())


async def claim_batch(
    pool: Pool,
    batch_size: int,
    now: datetime | None = None,
    *,
    cipher: PayloadCipher,
    push_first: PushFirst,
) -> ClaimResult:
    """Lock up to ``batch_size`` due reminders, move them on, and write their deliveries.

    The events go to Redis (``push_first``) before the deliveries are written, and those are
    written as sent: no second write of each delivery after the push. A crash (or a failed commit)
    after the push rolls the claim back; the rows are claimed again, and the push, idempotent per
    (event_id, attempt), does not put their events in the list twice. When Redis does not confirm
    the push, the deliveries are written pending, for the sweep.

    A row that cannot be planned (a time or schedule the scheduler cannot compute) or whose
    payload no key decrypts is set aside as ``quarantined`` and audited, in the same transaction;
    the other rows fire as usual.
    """
    batch = _Batch()
    async with pool.acquire() as conn, conn.transaction():
        # A row holding a time Python cannot decode fails the whole fetch: SQL sets it aside first.
        rows, unreadable = await fetch_due(conn, now, batch_size, POLLER_ACTOR)
        batch.quarantine_reasons.extend((reminder_id, "decode") for reminder_id in unreadable)
        if not rows:
            return ClaimResult(len(unreadable), [], quarantined=batch.quarantine_reasons)
        fired_at: datetime = rows[0]["db_now"]
        for row in rows:
            batch.add_row(row, fired_at, cipher)
        occurrences = _occurrences(batch.event_ids, batch.sources, fired_at)
        pushed = await push_first.push(occurrences) if occurrences else None
        if batch.quarantined:
            # After the push: a quarantined row leaves its assistant's live count, whose row this
            # locks until the commit (migration 0012), and a Redis call must not hold up creates.
            await conn.execute(queries["quarantine_reminders"], batch.quarantined, fired_at)
        inserted = await record_fires(
            conn,
            RecordFires(
                reminder_ids=batch.ids,
                next_run_at=batch.next_runs,
                status=batch.statuses,
                fired=batch.fired,
                event_ids=batch.event_ids,
                event_reminder_ids=batch.event_reminders,
                scheduled_for=batch.scheduled,
                late=batch.late,
                ack_required=batch.ack_required,
                fire_details=batch.fire_details,
                fired_at=fired_at,
                actor=POLLER_ACTOR,
                pushed=pushed is not None,
                ack_timeout=push_first.ack_timeout,
            ),
        )
        if pushed is not None and pushed.earlier:
            occurrences = await _keep_first_triggered_at(conn, occurrences, pushed.earlier)
        if batch.audit_actions:
            await conn.execute(
                queries["insert_audits"],
                POLLER_ACTOR,
                batch.audit_actions,
                batch.audit_reminders,
                batch.audit_details,
            )
    if len(inserted) < len(occurrences):
        # An occurrence already recorded is not new: its own delivery row stands (the sweep pushes
        # it if still pending; its marker keeps a push of ours from listing it twice). Only when
        # some were refused is the id set worth building.
        new = {record["event_id"] for record in inserted}
        occurrences = [o for o in occurrences if o.event_id in new]
    skipped = sum(1 for action in batch.audit_actions if action == "skip")
    pushed_at = pushed.at if pushed is not None else None
    return ClaimResult(len(rows), occurrences, skipped, pushed_at, batch.quarantine_reasons)


async def _keep_first_triggered_at(
    conn: Connection, occurrences: list[Occurrence], earlier: dict[UUID, datetime]
) -> list[Occurrence]:
    """Record, for events an earlier claim pushed before failing to commit, the triggered_at the
    assistant saw then (redeliveries take theirs from the delivery, so every attempt agrees), and
    return the occurrences as they went out."""
    await conn.execute(queries["keep_first_triggered_at"], list(earlier), list(earlier.values()))
    return [replace(o, triggered_at=earlier[o.event_id]) if o.event_id in earlier else o for o in occurrences]


def _fire_details(event_id: UUID, fire: Fire) -> str:
    """The JSON details of a fire's audit row: its event, its time (as events spell it), lateness."""
    details = {"event_id": str(event_id), "scheduled_for": format_time(fire.scheduled_for), "late": fire.late}
    return orjson.dumps(details).decode()


def _occurrences(
    event_ids: list[UUID],
    sources: list[tuple[asyncpg.Record, Fire, str]],
    fired_at: datetime,
) -> list[Occurrence]:
    """The occurrences to push, in the order they were due (reminder id breaking ties)."""
    occurrences = [
        occurrence_from_row(
            row,
            payload,
            event_id=event_id,
            attempt=1,
            triggered_at=fired_at,
            scheduled_for=fire.scheduled_for,
            late=fire.late,
        )
        for event_id, (row, fire, payload) in zip(event_ids, sources, strict=True)
    ]
    # UUIDs order as their 16 bytes do (and as their text does); bytes compare in C, where
    # comparing the UUIDs themselves goes through Python's uuid.UUID.__lt__.
    occurrences.sort(key=lambda o: (o.scheduled_for, o.reminder_id.bytes))
    return occurrences


def _describe(exc: Exception) -> str:
    """An error's type and the start of its message, for the audit: never a payload (not decrypted
    yet when planning fails) and never long."""
    return f"{type(exc).__name__}: {exc}"[:200]


def occurrence_from_row(
    row: asyncpg.Record,
    payload_json: str,
    *,
    event_id: UUID,
    attempt: int,
    triggered_at: datetime,
    scheduled_for: datetime,
    late: bool,
) -> Occurrence:
    """An occurrence from a row carrying the reminder's columns (reminder_id, type...) and its
    payload, already decrypted by the caller (``PayloadCipher.read``)."""
    return Occurrence(
        event_id=event_id,
        attempt=attempt,
        reminder_id=row["reminder_id"],
        assistant_id=row["assistant_id"],
        user_id=row["user_id"],
        reminder_type=row["type"],
        payload_json=payload_json,
        scheduled_for=scheduled_for,
        triggered_at=triggered_at,
        created_at=row["created_at"],
        ack_required=row["ack_required"],
        late=late,
    )
