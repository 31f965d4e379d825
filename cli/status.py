"""`reminders status`: reminders by status, the due backlog, queue lengths, live pollers, fire lag,
and the size of the tables that grow with use."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import orjson
import redis.asyncio as redis
import typer
from redis.exceptions import RedisError
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from cli.common import database_url, fail, load_settings, migrated, reader_gone, redis_url
from core.events import format_time
from core.queries import queries
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE, POLLER_HEARTBEATS
from core.states import REMINDER_STATUSES, REMINDER_TYPES
from core.stats import SIZED_TABLES

# A poller refreshes its heartbeat every few seconds; one silent for longer is gone or stuck.
POLLERS_SEEN_WITHIN = 30.0
FIRE_LAG_WINDOW = 300.0
# Failures that mean "cannot reach or query a server", reported in one line rather than a traceback.
CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, RedisError)


@dataclass(frozen=True, slots=True)
class PollerSeen:
    """One poller with a recent heartbeat."""

    poller_id: str
    seconds_ago: float


@dataclass(frozen=True, slots=True)
class Status:
    """One snapshot of the service, as `status` shows it."""

    at: datetime  # the database clock
    reminders: dict[str, dict[str, int]]  # status -> type -> count, zeros included
    due_backlog: int
    oldest_due_age_seconds: float | None
    never_due: int  # scheduled, with a next_run_at of +infinity or from year 10000: never claimed
    queue_length: int
    dead_letter_length: int
    pollers: list[PollerSeen]
    fired: int  # first pushes within FIRE_LAG_WINDOW
    fire_lag_p99_seconds: float | None
    table_bytes: dict[str, int]  # SIZED_TABLES, indexes included

    def to_json(self) -> dict[str, Any]:
        """The snapshot as one JSON-ready object (what ``--json`` prints)."""
        return {
            "at": format_time(self.at),
            "reminders": {
                "total": sum(sum(by_type.values()) for by_type in self.reminders.values()),
                "by_status": {status: sum(by_type.values()) for status, by_type in self.reminders.items()},
                "by_status_and_type": self.reminders,
            },
            "due_backlog": self.due_backlog,
            "oldest_due_age_seconds": _rounded(self.oldest_due_age_seconds),
            "never_due": self.never_due,
            "queue": {"name": EVENT_QUEUE, "length": self.queue_length},
            "dead_letter": {"name": DEAD_LETTER_QUEUE, "length": self.dead_letter_length},
            "pollers": {
                "seen_within_seconds": POLLERS_SEEN_WITHIN,
                "count": len(self.pollers),
                "seen": [{"id": p.poller_id, "seconds_ago": _rounded(p.seconds_ago)} for p in self.pollers],
            },
            "fire_lag": {
                "window_seconds": FIRE_LAG_WINDOW,
                "fired": self.fired,
                "p99_seconds": _rounded(self.fire_lag_p99_seconds),
            },
            "table_bytes": self.table_bytes,
        }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


async def collect(conn: asyncpg.Connection, client: redis.Redis) -> Status:
    """Read one snapshot: counts from Postgres, list lengths and heartbeats from Redis."""
    reminders = {status: dict.fromkeys(REMINDER_TYPES, 0) for status in REMINDER_STATUSES}
    for row in await conn.fetch(queries["status_reminder_counts"]):
        reminders.setdefault(row["status"], {})[row["type"]] = row["count"]
    backlog = await conn.fetchrow(queries["status_due_backlog"])
    lag = await conn.fetchrow(queries["status_fire_lag"], FIRE_LAG_WINDOW)
    sized = await conn.fetch(queries["table_sizes"], SIZED_TABLES)
    assert backlog is not None and lag is not None  # aggregates always return one row
    async with client.pipeline(transaction=False) as pipe:
        pipe.llen(EVENT_QUEUE)
        pipe.llen(DEAD_LETTER_QUEUE)
        pipe.zrangebyscore(POLLER_HEARTBEATS, time.time() - POLLERS_SEEN_WITHIN, "+inf", withscores=True)
        queue_length, dead_length, heartbeats = await pipe.execute()
    # Heartbeat scores are Unix times from the pollers' clocks, so they are compared with ours.
    now = time.time()
    pollers = [
        PollerSeen(member.decode() if isinstance(member, bytes) else str(member), max(0.0, now - score))
        for member, score in heartbeats
    ]
    return Status(
        at=backlog["db_now"],
        reminders=reminders,
        due_backlog=backlog["due"],
        oldest_due_age_seconds=backlog["oldest_due_age_seconds"],
        never_due=backlog["never_due"],
        queue_length=int(queue_length),
        dead_letter_length=int(dead_length),
        pollers=sorted(pollers, key=lambda p: p.poller_id),
        fired=lag["fired"],
        fire_lag_p99_seconds=lag["lag_p99_seconds"],
        table_bytes={row["name"]: row["bytes"] for row in sized},
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _size(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def render(status: Status) -> Group:
    """The snapshot as two tables: reminders by status and type, then the service's vital signs."""
    counts = Table(title=f"Reminders at {format_time(status.at)}", title_justify="left")
    counts.add_column("status")
    for reminder_type in REMINDER_TYPES:
        counts.add_column(reminder_type, justify="right")
    counts.add_column("total", justify="right")
    for name, by_type in status.reminders.items():
        counts.add_row(name, *(str(by_type.get(t, 0)) for t in REMINDER_TYPES), str(sum(by_type.values())))
    vitals = Table(show_header=False, title="Service", title_justify="left")
    vitals.add_column("what")
    vitals.add_column("value", justify="right")
    vitals.add_row("due now, not claimed", str(status.due_backlog))
    vitals.add_row("oldest due waiting", _duration(status.oldest_due_age_seconds))
    if status.never_due:
        vitals.add_row("scheduled, never due (time past 9999)", str(status.never_due))
    vitals.add_row(EVENT_QUEUE, str(status.queue_length))
    vitals.add_row(DEAD_LETTER_QUEUE, str(status.dead_letter_length))
    seen = ", ".join(f"{p.poller_id} ({p.seconds_ago:.0f}s ago)" for p in status.pollers)
    vitals.add_row(
        f"pollers seen (last {POLLERS_SEEN_WITHIN:.0f} s)",
        f"{len(status.pollers)}" + (f": {seen}" if seen else ""),
    )
    vitals.add_row(
        f"fire lag p99 (last {FIRE_LAG_WINDOW / 60:.0f} min)",
        f"{_duration(status.fire_lag_p99_seconds)} over {status.fired} fires",
    )
    vitals.add_row(
        "on disk (reminders, deliveries, audit log, idempotency keys)",
        " / ".join(_size(status.table_bytes.get(name, 0)) for name in SIZED_TABLES),
    )
    return Group(counts, vitals)


async def _run(db_url: str, rd_url: str, as_json: bool, watch: float | None) -> None:
    conn = await asyncpg.connect(db_url, server_settings={"application_name": "reminders-status"})
    client = redis.from_url(rd_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        async with migrated(conn):
            await _show(conn, client, as_json, watch)
    finally:
        await client.aclose()
        await conn.close()


async def _show(conn: asyncpg.Connection, client: redis.Redis, as_json: bool, watch: float | None) -> None:
    console = Console()
    if watch is None:
        status = await collect(conn, client)
        if as_json:
            typer.echo(orjson.dumps(status.to_json()).decode())
        else:
            console.print(render(status))
        return
    if as_json or not console.is_terminal:
        # Not a screen to redraw: one snapshot after another (JSON lines with --json).
        while True:
            status = await collect(conn, client)
            if as_json:
                typer.echo(orjson.dumps(status.to_json()).decode())
            else:
                console.print(render(status))
            await asyncio.sleep(watch)
    with Live(render(await collect(conn, client)), console=console, auto_refresh=False) as live:
        while True:
            await asyncio.sleep(watch)
            live.update(render(await collect(conn, client)), refresh=True)


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    watch: Annotated[
        float | None,
        typer.Option(min=0.2, metavar="SECONDS", help="Refresh every SECONDS (at least 0.2) until Ctrl-C."),
    ] = None,
) -> None:
    """Show reminders by status, the due backlog, queue lengths, live pollers and fire lag p99.

    Needs REMINDERS_DATABASE_URL and REMINDERS_REDIS_URL. With --watch and --json: one object a line.
    """
    settings = load_settings()
    db_url, rd_url = database_url(settings), redis_url(settings)
    try:
        asyncio.run(_run(db_url, rd_url, as_json, watch))
    except KeyboardInterrupt:
        raise typer.Exit(0 if watch is not None else 130) from None
    except BrokenPipeError:
        reader_gone()
    except CONNECTION_ERRORS as error:
        fail(f"cannot read the status: {error!r}")
