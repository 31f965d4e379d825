"""`reminders tail`: follow the events pushed to ``queue:to_assistant`` without consuming them.

The tail reads the deliveries outbox in Postgres, not the Redis list. Consumers take events off
the list (BLMOVE/LPOP) as soon as they arrive, so polling LRANGE misses any event popped between two
reads, however often it polls; a delivery row, in contrast, stays, and gets its ``sent_at`` once
Redis has confirmed the push. Reading rows by ``sent_at`` therefore shows every push exactly once
(keyed by event id and attempt: a redelivery is a new push), whoever pops it and however fast.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

import asyncpg
import typer

from cli.common import database_url, fail, load_settings, migrated, payload_cipher, reader_gone
from core.crypto import PayloadCipher
from core.events import Occurrence, encode_event, format_time
from core.exceptions import PayloadCryptoError
from core.queries import queries

# ``sent_at`` is the database clock when the marking transaction started, and that transaction
# commits a little later: a row can become visible after rows with a later ``sent_at`` were read.
# Each poll therefore rereads the last LOOKBACK seconds (ids already shown are skipped); a commit
# slower than this would be missed.
LOOKBACK = timedelta(seconds=10)
PAGE_SIZE = 1_000
_NO_EVENT = UUID(int=0)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``30s``, ``5m``, ``2h`` or ``1d`` as a timedelta."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 30s, 5m, 2h or 1d")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


@dataclass(frozen=True, slots=True)
class SentEvent:
    """One push of one event, as read back from the outbox."""

    sent_at: datetime
    occurrence: Occurrence
    has_payload: bool


def _event(row: asyncpg.Record, cipher: PayloadCipher | None) -> SentEvent:
    # Without --payload nothing is decrypted; the event then carries "payload": null.
    payload = cipher.read(row["payload_ciphertext"], row["payload"]) if cipher else "null"
    occurrence = Occurrence(
        event_id=row["event_id"],
        attempt=row["attempt"],
        reminder_id=row["reminder_id"],
        assistant_id=row["assistant_id"],
        user_id=row["user_id"],
        reminder_type=row["type"],
        payload_json=payload,
        scheduled_for=row["scheduled_for"],
        triggered_at=row["triggered_at"],
        created_at=row["created_at"],
        ack_required=row["ack_required"],
        late=row["late"],
    )
    return SentEvent(row["sent_at"], occurrence, cipher is not None)


def format_line(event: SentEvent) -> str:
    """One human line: sent time, event id, reminder, user, occurrence time, lateness."""
    o = event.occurrence
    line = (
        f"{format_time(event.sent_at)}  {o.event_id}  reminder={o.reminder_id}  user={o.user_id}  "
        f"scheduled_for={format_time(o.scheduled_for)}  late={'yes' if o.late else 'no'}"
    )
    if o.attempt > 1:
        line += f"  attempt={o.attempt}"
    if event.has_payload:
        line += f"  payload={o.payload_json}"
    return line


def format_json(event: SentEvent) -> str:
    """The event as pushed to Redis (``payload`` null unless decrypted with --payload)."""
    return encode_event(event.occurrence).decode()


async def follow(
    conn: asyncpg.Connection,
    emit: Callable[[SentEvent], None],
    *,
    since: timedelta,
    interval: float,
    cipher: PayloadCipher | None = None,
    limit: int | None = None,
    once: bool = False,
    on_caught_up: Callable[[datetime], None] = lambda _start: None,
) -> int:
    """Emit every push from ``since`` ago on, oldest first, until ``limit`` (or, with ``once``, the
    present); ``on_caught_up(start)`` runs after the first read. Returns how many were emitted."""
    start: datetime = await conn.fetchval(queries["db_now"]) - since
    lower = start
    shown: dict[tuple[UUID, int], datetime] = {}  # pushes already emitted -> their sent_at
    emitted = 0
    first = True
    while True:
        polled_at: datetime = await conn.fetchval(queries["db_now"])
        after: tuple[datetime, UUID] = (lower, _NO_EVENT)
        while True:  # pages, so catching up on a long --since never loads everything at once
            rows = await conn.fetch(queries["tail_sent_deliveries"], *after, PAGE_SIZE, cipher is not None)
            for row in rows:
                key = (row["event_id"], row["attempt"])
                if key in shown:
                    continue
                shown[key] = row["sent_at"]
                emit(_event(row, cipher))
                emitted += 1
                if limit is not None and emitted >= limit:
                    return emitted
            if len(rows) < PAGE_SIZE:
                break
            after = (rows[-1]["sent_at"], rows[-1]["event_id"])
        if first:
            on_caught_up(start)
            first = False
        if once:
            return emitted
        lower = max(start, polled_at - LOOKBACK)
        # Rows older than the next read's lower bound cannot come back: forget them.
        shown = {key: sent_at for key, sent_at in shown.items() if sent_at >= lower}
        await asyncio.sleep(interval)


async def _run(
    db_url: str,
    as_json: bool,
    since: timedelta,
    interval: float,
    cipher: PayloadCipher | None,
    limit: int | None,
    once: bool,
) -> int:
    conn = await asyncpg.connect(db_url, server_settings={"application_name": "reminders-tail"})

    def emit(event: SentEvent) -> None:
        typer.echo(format_json(event) if as_json else format_line(event))

    def caught_up(start: datetime) -> None:
        if not once:
            typer.echo(f"following events pushed since {format_time(start)} (Ctrl-C stops)", err=True)

    try:
        async with migrated(conn):
            return await follow(
                conn, emit, since=since, interval=interval, cipher=cipher, limit=limit, once=once,
                on_caught_up=caught_up,
            )  # fmt: skip
    finally:
        await conn.close()


def tail(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print each event as the JSON pushed to Redis, one a line."),
    ] = False,
    since: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            show_default=False,
            help="Start this far back, e.g. 30s, 5m, 2h (default: now).",
        ),
    ] = "0",
    payload: Annotated[
        bool,
        typer.Option(
            "--payload",
            help="Decrypt and show payloads (REMINDERS_PAYLOAD_KEYS, or the key of a running up).",
        ),
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Stop after this many events.")
    ] = None,
    once: Annotated[
        bool,
        typer.Option("--once", help="Print the events already pushed (see --since) and stop."),
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, metavar="SECONDS", help="Seconds between reads of the outbox.")
    ] = 0.5,
) -> None:
    """Follow the events pushed to queue:to_assistant, without taking them off the queue.

    Reads the deliveries outbox in Postgres (REMINDERS_DATABASE_URL), so events a consumer has
    already popped are shown too. Runs until Ctrl-C, --limit or, with --once, the present.
    """
    start_back = parse_duration(since)
    settings = load_settings()
    db_url = database_url(settings)
    # The keys of REMINDERS_PAYLOAD_KEYS, or of the `reminders up` running here.
    cipher = payload_cipher(settings) if payload else None
    try:
        asyncio.run(_run(db_url, as_json, start_back, interval, cipher, limit, once))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BrokenPipeError:
        reader_gone()
    except PayloadCryptoError as error:
        fail(error)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        fail(f"cannot read the deliveries: {error!r}")
