"""What each endpoint does to the database: one short transaction each, audited."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
import structlog

from api.auth import Principal
from api.request_id import request_id_var
from api.schemas import Ack, DstPolicy, ReminderCreate, ReminderUpdate
from core.cron import InvalidSchedule, next_fire
from core.crypto import PayloadCipher
from core.db import DATABASE_ERRORS, Connection, Pool
from core.events import event_id_for
from core.exceptions import Conflict, Forbidden, InvalidField, NotFound, RetryLater
from core.queries import queries
from core.states import (
    ENDED_STATUSES,
    LIVE_STATUSES,
    SCHEDULED_STATUSES,
    DeliveryState,
    ReminderStatus,
    ReminderType,
)
from core.store.reminders import Creates, NewReminder, Reads

log = structlog.get_logger("api")


# Fires further ahead than this are not announced to the pollers (see notify_due in sql/reminders.sql):
# a poller's regular tick plans a wake-up for any fire within one poll interval, so this only has to
# exceed REMINDERS_POLL_INTERVAL (default 1 s) with room to spare for a poller configured slower.
NOTIFY_HORIZON_SECONDS = 300.0
# How far behind our clock a recurring create guesses the database's now (create_reminder checks
# the guess): hosts kept by NTP agree within milliseconds; a fire inside the margin costs a retry.
CLOCK_GUESS_MARGIN = timedelta(seconds=1)


def _audit_details(principal: Principal, **details: Any) -> str:
    """An audit row's JSON details: ``details``, the request id and the actor's assistants."""
    details["request_id"] = request_id_var.get()
    # Who acted: the credential (the actor column) and the assistants it stands for.
    assistants = principal.visible_assistants()
    details["actor_assistants"] = "all" if assistants is None else [str(a) for a in assistants]
    return orjson.dumps(details, default=str).decode()


async def _audit(
    conn: Connection, principal: Principal, verb: str, reminder_id: UUID, **details: Any
) -> None:
    details_json = _audit_details(principal, **details)
    await conn.execute(queries["insert_audit"], principal.credential_id, verb, reminder_id, details_json)


def _next_fire(schedule: Mapping[str, Any] | asyncpg.Record, after: datetime) -> datetime:
    """The fire after ``after`` of a recurring row (or merged change), with its DST policy."""
    return next_fire(
        schedule["cron_expression"],
        schedule["timezone"],
        after,
        gap=schedule["dst_gap"],
        repeated=schedule["dst_repeated"],
    )


async def _notify_due(db: Pool | Connection, before: asyncpg.Record | None, after: asyncpg.Record) -> None:
    """Tell the pollers (at commit) when ``after`` may now be the nearest fire.

    Only a fire that became scheduled, or moved earlier, needs telling: a poller already woke for the
    old time or will, and every poll re-plans from the nearest next_run_at, so a later move is found.
    """
    when = after["next_run_at"]
    if when is None or after["status"] not in SCHEDULED_STATUSES:
        return
    if before is not None and before["status"] in SCHEDULED_STATUSES and before["next_run_at"] is not None:
        if when >= before["next_run_at"]:
            return
    if when > datetime.now(UTC) + 2 * timedelta(seconds=NOTIFY_HORIZON_SECONDS):
        return  # far off on any plausible clock: spare the round trip (the query checks on the DB's)
    await db.execute(queries["notify_due"], when, NOTIFY_HORIZON_SECONDS)


async def _schedule_from(db: Pool | Connection, start_at: datetime | None) -> datetime:
    """Where a recurring schedule's next fire is looked for from: the database's now, or just
    before a later ``start_at`` (a fire exactly at start_at counts)."""
    now: datetime = await db.fetchval(queries["db_now"])
    if start_at is not None and start_at > now:
        return start_at - timedelta(microseconds=1)
    return now


async def _first_fire(db: Pool | Connection, body: ReminderCreate, policy: DstPolicy) -> datetime:
    """A new recurring reminder's first fire after the database's now (or from ``start_at``)."""
    assert body.cron_expression is not None
    now = await _schedule_from(db, body.start_at)
    first = next_fire(body.cron_expression, body.timezone, now, gap=policy.gap, repeated=policy.repeated)
    if body.until is not None and first > body.until:
        raise InvalidField("until", "the schedule has no fire before until")
    return first


def _visible(row: asyncpg.Record | None, principal: Principal) -> asyncpg.Record:
    # Another assistant's reminder is "not found": its existence must not leak.
    if row is None or not principal.can_act_for(row["assistant_id"]):
        raise NotFound("reminder not found")
    return row


async def create_reminder(
    pool: Pool,
    principal: Principal,
    body: ReminderCreate,
    cipher: PayloadCipher,
    creates: Creates,
    idempotency_key: str | None = None,
) -> tuple[asyncpg.Record, bool]:
    """Store a new reminder with its first fire; a past ``trigger_at`` fires at once.

    The payload is stored only encrypted (``cipher``'s primary key); it is never logged.
    Past ``creates.live_cap`` live reminders of the assistant (0: no cap) it is a 409, decided
    atomically in the insert (core/store/reminders.py). ``creates`` writes the row together
    with those of concurrent creates (core/store/reminders.py, Creates).
    """
    if not principal.can_act_for(body.assistant_id):
        raise Forbidden("this credential may not create reminders for that assistant_id")
    reminder_id = uuid4()
    if idempotency_key is None:
        # The only write is one statement (the reminder with its audit row), atomic by itself: no
        # BEGIN and COMMIT, and no connection held between steps (the batch has its own).
        row = await _create(pool, principal, body, cipher, reminder_id, creates)
    else:
        async with pool.acquire() as conn, conn.transaction():
            request_hash = hashlib.sha256(body.model_dump_json().encode()).digest()
            claimed = await conn.fetchval(
                queries["claim_idempotency_key"],
                principal.credential_id,
                idempotency_key,
                request_hash,
                reminder_id,
            )
            if claimed is None:
                prior = await conn.fetchrow(
                    queries["get_idempotency_key"], principal.credential_id, idempotency_key
                )
                assert prior is not None
                if bytes(prior["request_hash"]) != request_hash:
                    raise InvalidField(
                        "Idempotency-Key", "this key was used with a different body", location="header"
                    )
                first = await conn.fetchrow(queries["get_reminder"], prior["reminder_id"])
                assert first is not None
                return first, False
            row = await _create(conn, principal, body, cipher, reminder_id, creates)
    log.info(
        "create",
        reminder_id=str(reminder_id),
        assistant_id=str(body.assistant_id),
        type=body.type,
        next_run_at=str(row["next_run_at"]),
        credential=principal.credential_id,
    )
    return row, True


async def _create(
    db: Pool | Connection,
    principal: Principal,
    body: ReminderCreate,
    cipher: PayloadCipher,
    reminder_id: UUID,
    creates: Creates,
) -> asyncpg.Record:
    """Work out the first fire and write the reminder, within the live cap; on ``db``, a pool or
    the connection of the caller's transaction."""
    trigger_at = body.trigger_at
    policy = body.dst_policy or DstPolicy()
    guess: datetime | None = None
    if body.type == ReminderType.ONE_TIME:
        if body.trigger_in is not None:
            # Relative to the database clock, like every other schedule computation.
            trigger_at = await db.fetchval(queries["db_now"]) + body.trigger_in
        status, next_run_at = ReminderStatus.PENDING, trigger_at
    else:
        assert body.cron_expression is not None
        status = ReminderStatus.ACTIVE
        if body.start_at is None and len(body.cron_expression.split()) == 5:
            # Save the round trip for the database clock: compute from a moment just behind it,
            # and let the insert check that nothing fires in between (else it writes nothing and
            # the clock is asked after all). Minute schedules only: a seconds schedule would often
            # fire within the margin.
            guess = datetime.now(UTC) - CLOCK_GUESS_MARGIN
            next_run_at = next_fire(
                body.cron_expression, body.timezone, guess, gap=policy.gap, repeated=policy.repeated
            )
            if body.until is not None and next_run_at > body.until:
                guess = None  # the exact path below decides (and words) the refusal
        if guess is None:
            next_run_at = await _first_fire(db, body, policy)
    assert next_run_at is not None
    encrypted = cipher.encrypt(body.payload)

    def values(first_fire: datetime, guessed_from: datetime | None) -> NewReminder:
        return NewReminder(
            id=reminder_id,
            user_id=body.user_id,
            assistant_id=body.assistant_id,
            created_by_assistant_id=principal.creator_for(body.assistant_id),
            type=body.type,
            trigger_at=trigger_at,
            cron_expression=body.cron_expression,
            timezone=body.timezone,
            payload_ciphertext=encrypted,
            status=status,
            next_run_at=first_fire,
            misfire_policy=body.misfire_policy,
            misfire_grace_seconds=body.misfire_grace_seconds,
            ack_required=body.ack_required,
            payload_key_id=cipher.key_id,
            start_at=body.start_at,
            until=body.until,
            max_runs=body.max_runs,
            dst_gap=policy.gap,
            dst_repeated=policy.repeated,
            actor=principal.credential_id,
            details=_audit_details(principal, type=body.type, next_run_at=first_fire),
            guess=guessed_from,
        )

    written = await creates.create(db, values(next_run_at, guess))
    if written is None and guess is not None:
        # Refused for the guess, or for the cap: asked again with the database's clock, only the
        # cap can refuse it.
        written = await creates.create(db, values(await _first_fire(db, body, policy), None))
    if written is None:
        raise Conflict(
            f"assistant {body.assistant_id} has reached its limit of {creates.live_cap} live (pending, "
            "active or paused) reminders; complete or cancel some first"
        )
    try:
        await _notify_due(db, None, written)
    except DATABASE_ERRORS as exc:
        if not isinstance(db, asyncpg.Pool):
            raise  # in the caller's transaction: nothing was created, the retry is safe
        # Already created (no transaction): a 503 would invite a duplicate. The pollers' next
        # tick finds the reminder anyway, at most a poll interval late.
        log.warning("notify_failed", reminder_id=str(reminder_id), error=repr(exc))
    return written


async def get_reminder(
    pool: Pool, principal: Principal, reminder_id: UUID, reads: Reads | None = None
) -> asyncpg.Record:
    """One reminder the caller may see; ``reads`` reads it with those of concurrent reads."""
    if reads is not None:
        return _visible(await reads.get(pool, reminder_id), principal)
    return _visible(await pool.fetchrow(queries["get_reminder"], reminder_id), principal)


async def list_user_reminders(
    pool: Pool,
    principal: Principal,
    user_id: int,
    *,
    status: str | None,
    kind: str | None,
    page: int,
    limit: int,
) -> tuple[list[asyncpg.Record], int]:
    """A page of one user's reminders (of the assistants the caller covers) and their total."""
    scope = principal.visible_assistants()
    async with pool.acquire() as conn:
        total = await conn.fetchval(queries["count_user_reminders"], user_id, status, kind, scope)
        rows = await conn.fetch(
            queries["list_user_reminders"], user_id, status, kind, scope, limit, (page - 1) * limit
        )
    return rows, int(total)


async def list_scheduled(
    pool: Pool, principal: Principal, *, page: int, limit: int
) -> tuple[list[asyncpg.Record], int]:
    """What will fire, soonest first, and the total."""
    scope = principal.visible_assistants()
    async with pool.acquire() as conn:
        total = await conn.fetchval(queries["count_scheduled"], scope)
        rows = await conn.fetch(queries["list_scheduled"], scope, limit, (page - 1) * limit)
    return rows, int(total)


NULLABLE_FIELDS = frozenset({"until", "max_runs"})
RECURRING_ONLY = frozenset({"cron_expression", "until", "max_runs", "dst_policy"})


async def update_reminder(
    pool: Pool, principal: Principal, reminder_id: UUID, change: ReminderUpdate, cipher: PayloadCipher
) -> asyncpg.Record:
    """Apply a PATCH: new fields (next fire recomputed), then pause or resume, in one transaction."""
    fields = change.model_dump(exclude_unset=True)
    wanted = fields.pop("status", None)
    async with pool.acquire() as conn, conn.transaction():
        before = row = _visible(await conn.fetchrow(queries["lock_reminder"], reminder_id), principal)
        if fields:
            row = await _update_fields(conn, principal, row, fields, cipher)
        if wanted is not None:
            row = await _pause_or_resume(conn, principal, row, ReminderStatus(wanted))
        await _notify_due(conn, before, row)
    return row


async def _update_fields(  # noqa: C901 (one branch per updatable field)
    conn: Connection,
    principal: Principal,
    row: asyncpg.Record,
    fields: dict[str, Any],
    cipher: PayloadCipher,
) -> asyncpg.Record:
    kind, status = row["type"], row["status"]
    # A quarantined row holds what could not be planned: changing a field would leave it set aside
    # with a schedule nobody checked; it is cancelled, or repaired by an operator.
    if status in ENDED_STATUSES:
        raise Conflict(f"a {status} reminder cannot be changed")
    for name, value in fields.items():
        if value is None and name not in NULLABLE_FIELDS:
            raise InvalidField(name, "may not be null")
        if kind == ReminderType.ONE_TIME and name in RECURRING_ONLY:
            raise InvalidField(name, "only for recurring reminders")
        if kind == ReminderType.RECURRING and name == "trigger_at":
            raise InvalidField(name, "not for a recurring reminder; change cron_expression")
    merged = {**dict(row), **fields}
    policy = fields.get("dst_policy") or {}
    merged["dst_gap"] = policy.get("gap", row["dst_gap"])
    merged["dst_repeated"] = policy.get("repeated", row["dst_repeated"])
    next_run_at = row["next_run_at"]
    if kind == ReminderType.ONE_TIME and "trigger_at" in fields:
        if status == ReminderStatus.ACTIVE:
            raise Conflict("this reminder already fired; snooze it to have it fire again")
        next_run_at = fields["trigger_at"]
    if kind == ReminderType.RECURRING and {"cron_expression", "timezone", "dst_policy"} & fields.keys():
        next_run_at = _next_fire(merged, await _schedule_from(conn, merged["start_at"]))
    if kind == ReminderType.RECURRING and merged["until"] is not None and next_run_at is not None:
        if next_run_at > merged["until"]:
            raise InvalidField("until", "the schedule has no fire before until")
    if merged["max_runs"] is not None and merged["max_runs"] <= row["runs_count"]:
        raise InvalidField("max_runs", f"it already fired {row['runs_count']} times")
    if "payload" in fields:
        ciphertext, key_id = cipher.encrypt(fields["payload"]), cipher.key_id
    else:
        ciphertext = row["payload_ciphertext"]
        key_id = row["payload_key_id"]
        if ciphertext is None:  # a row from before encryption: encrypt it now
            ciphertext, key_id = cipher.encrypt(row["payload"]), cipher.key_id
    updated = await conn.fetchrow(
        queries["update_reminder_fields"],
        row["id"],
        merged["trigger_at"],
        merged["cron_expression"],
        merged["timezone"],
        ciphertext,
        key_id,
        merged["misfire_policy"],
        merged["misfire_grace_seconds"],
        merged["ack_required"],
        merged["until"],
        merged["max_runs"],
        next_run_at,
        merged["dst_gap"],
        merged["dst_repeated"],
    )
    assert updated is not None
    # Field names only: a payload never goes into the audit log.
    await _audit(conn, principal, "update", row["id"], fields=sorted(fields), next_run_at=next_run_at)
    log.info(
        "update",
        reminder_id=str(row["id"]),
        assistant_id=str(row["assistant_id"]),
        fields=sorted(fields),
        credential=principal.credential_id,
    )
    return updated


def _running_status(kind: str) -> ReminderStatus:
    """The status of a reminder of this type that is neither paused nor over."""
    return ReminderStatus.PENDING if kind == ReminderType.ONE_TIME else ReminderStatus.ACTIVE


async def _pause_or_resume(
    conn: Connection, principal: Principal, row: asyncpg.Record, wanted: ReminderStatus
) -> asyncpg.Record:
    reminder_id = row["id"]
    current, kind = row["status"], row["type"]
    running = _running_status(kind)
    paused = ReminderStatus.PAUSED
    if (wanted == paused and current == paused) or (wanted == ReminderStatus.ACTIVE and current == running):
        return row
    if wanted == paused and current == running:
        new_status, next_run_at = paused, row["next_run_at"]
        action = "pause"
    elif wanted == ReminderStatus.ACTIVE and current == paused:
        new_status, action = running, "resume"
        # The fire that was next when paused stays next: if the pause outlasted it, the
        # reminder's misfire policy decides (skip, one late catch-up, or every missed fire).
        next_run_at = row["next_run_at"]
        if next_run_at is None:
            if kind == ReminderType.ONE_TIME:
                next_run_at = row["trigger_at"]
            else:
                now = await conn.fetchval(queries["db_now"])
                next_run_at = _next_fire(row, now)
    else:
        raise Conflict(f"cannot change a {kind} reminder from {current} to {wanted}")
    updated = await conn.fetchrow(queries["set_reminder_state"], reminder_id, new_status, next_run_at)
    await _audit(conn, principal, action, reminder_id, previous=current, next_run_at=next_run_at)
    assert updated is not None
    log.info(
        action,
        reminder_id=str(reminder_id),
        assistant_id=str(row["assistant_id"]),
        credential=principal.credential_id,
    )
    return updated


async def cancel_reminder(pool: Pool, principal: Principal, reminder_id: UUID) -> None:
    """Cancel for good; the row stays for audit and never fires again."""
    async with pool.acquire() as conn, conn.transaction():
        row = _visible(await conn.fetchrow(queries["lock_reminder_status"], reminder_id), principal)
        if row["status"] == ReminderStatus.CANCELLED:
            return
        await conn.execute(queries["cancel_reminder"], reminder_id)
        await conn.execute(queries["stop_redelivery"], reminder_id)
        await _audit(conn, principal, "cancel", reminder_id, previous=row["status"])
    log.info(
        "cancel",
        reminder_id=str(reminder_id),
        assistant_id=str(row["assistant_id"]),
        credential=principal.credential_id,
    )


# How many of a due reminder's occurrences an ack of an unknown event is compared with, and how far
# past this host's clock (the claim reads the database's): both only bound the work of a 404.
IN_FLIGHT_OCCURRENCES = 100
IN_FLIGHT_CLOCK_MARGIN = timedelta(seconds=60)


def _in_flight(row: asyncpg.Record, event_id: UUID, now: datetime) -> bool:
    """Whether ``event_id`` is one of the reminder's occurrences from its ``next_run_at`` up to now.

    Such an event was pushed by a claim that has not committed: one still open takes the reminder's
    row lock first, so here it is one whose poller stopped between push and commit (docs/events.md).
    The next claim records it within a poll. Only events a claim would push now can match: later
    occurrences have not been sent to anyone yet.
    """
    if row["status"] not in SCHEDULED_STATUSES:
        return False  # paused, completed or cancelled since: no claim will record it
    at: datetime | None = row["next_run_at"]
    until = now + IN_FLIGHT_CLOCK_MARGIN
    for _ in range(IN_FLIGHT_OCCURRENCES):
        if at is None or at > until:
            return False
        if event_id_for(row["id"], at) == event_id:
            return True
        if row["cron_expression"] is None:
            return False
        try:
            at = _next_fire(row, at)
        except InvalidSchedule:
            return False  # the series has no further fire
    return False


async def ack_event(pool: Pool, principal: Principal, reminder_id: UUID, ack: Ack) -> asyncpg.Record:
    """Record the assistant's ack; completes a one-time reminder, or a chain asked to end."""
    async with pool.acquire() as conn, conn.transaction():
        row = _visible(await conn.fetchrow(queries["lock_reminder"], reminder_id), principal)
        delivery = await conn.fetchrow(queries["lock_delivery"], ack.event_id, reminder_id)
        if delivery is None:
            if _in_flight(row, ack.event_id, datetime.now(UTC)):
                # A poller stopped between its push and its commit: worth a look if it recurs.
                log.warning("ack_before_record", reminder_id=str(reminder_id), event_id=str(ack.event_id))
                raise RetryLater("this event is not recorded yet (its poller stopped before its commit)")
            raise NotFound("event not found for this reminder")
        if delivery["state"] == DeliveryState.ACKED:
            return row
        if delivery["state"] == DeliveryState.DEAD:
            raise Conflict("this event was given up on (dead-lettered); it can no longer be acked")
        await conn.execute(queries["ack_delivery"], ack.event_id)
        # A one-time reminder is done when its fire is acked, unless it was snoozed since (pending
        # again): then this ack only closes the old event and the snoozed fire still goes out.
        completes = ack.action == "complete" or (
            row["type"] == ReminderType.ONE_TIME and row["status"] == ReminderStatus.ACTIVE
        )
        if completes and row["status"] in LIVE_STATUSES:
            completed = await conn.fetchrow(
                queries["set_reminder_state"], reminder_id, ReminderStatus.COMPLETED, None
            )
            assert completed is not None
            row = completed
            await conn.execute(queries["stop_redelivery"], reminder_id)
        await _audit(
            conn,
            principal,
            "ack",
            reminder_id,
            event_id=ack.event_id,
            result=ack.result,
            action=ack.action,
            details=ack.details,
        )
    log.info(
        "ack",
        reminder_id=str(reminder_id),
        event_id=str(ack.event_id),
        assistant_id=str(row["assistant_id"]),
        result=ack.result,
        action=ack.action,
        credential=principal.credential_id,
    )
    return row


async def history(
    pool: Pool, principal: Principal, reminder_id: UUID, *, page: int, limit: int
) -> tuple[list[asyncpg.Record], int, list[asyncpg.Record], int]:
    """A page of the reminder's audit rows and of its deliveries, newest first, with totals."""
    offset = (page - 1) * limit
    async with pool.acquire() as conn:
        _visible(await conn.fetchrow(queries["get_reminder"], reminder_id), principal)
        audit = await conn.fetch(queries["reminder_audit_page"], reminder_id, limit, offset)
        audit_total = await conn.fetchval(queries["count_reminder_audit"], reminder_id)
        deliveries = await conn.fetch(queries["reminder_deliveries_page"], reminder_id, limit, offset)
        deliveries_total = await conn.fetchval(queries["count_reminder_deliveries"], reminder_id)
    return audit, int(audit_total), deliveries, int(deliveries_total)


async def snooze(
    pool: Pool, principal: Principal, reminder_id: UUID, *, delay: timedelta | None, until: datetime | None
) -> asyncpg.Record:
    """Move only the next occurrence; a fired one-time reminder fires again at the new time."""
    async with pool.acquire() as conn, conn.transaction():
        row = _visible(await conn.fetchrow(queries["lock_reminder"], reminder_id), principal)
        if row["status"] not in SCHEDULED_STATUSES:
            raise Conflict(f"cannot snooze a {row['status']} reminder")
        now = await conn.fetchval(queries["db_now"])
        when = until if until is not None else now + (delay or timedelta(0))
        if when <= now:
            raise InvalidField("until", "must be in the future")
        updated = await conn.fetchrow(
            queries["set_reminder_state"], reminder_id, _running_status(row["type"]), when
        )
        assert updated is not None
        await _notify_due(conn, row, updated)
        # The event being snoozed is handled: it is not redelivered.
        await conn.execute(queries["stop_redelivery"], reminder_id)
        await _audit(conn, principal, "snooze", reminder_id, previous=row["next_run_at"], next_run_at=when)
    assert updated is not None
    log.info(
        "snooze",
        reminder_id=str(reminder_id),
        assistant_id=str(row["assistant_id"]),
        next_run_at=str(when),
        credential=principal.credential_id,
    )
    return updated


async def skip_next(pool: Pool, principal: Principal, reminder_id: UUID) -> asyncpg.Record:
    """Skip the next occurrence of a recurring reminder; the one after it becomes next."""
    async with pool.acquire() as conn, conn.transaction():
        row = _visible(await conn.fetchrow(queries["lock_reminder"], reminder_id), principal)
        if row["type"] != ReminderType.RECURRING or row["status"] not in (
            ReminderStatus.ACTIVE,
            ReminderStatus.PAUSED,
        ):
            raise Conflict(
                f"only an active or paused recurring reminder can skip; this one is {row['status']}"
            )
        skipped = row["next_run_at"]
        following = _next_fire(row, skipped)
        if row["until"] is not None and following > row["until"]:
            raise Conflict("skipping would pass until: there is no later fire; cancel it instead")
        updated = await conn.fetchrow(queries["set_reminder_state"], reminder_id, row["status"], following)
        assert updated is not None
        # Never sends today (a skip moves the fire later), but keeps the rule in one place.
        await _notify_due(conn, row, updated)
        await _audit(conn, principal, "skip", reminder_id, scheduled_for=skipped, reason="requested")
    assert updated is not None
    log.info(
        "skip",
        reminder_id=str(reminder_id),
        assistant_id=str(row["assistant_id"]),
        credential=principal.credential_id,
    )
    return updated
