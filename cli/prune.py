"""``reminders prune``: apply the retention rules (core/retention.py). Run it daily, e.g. from cron.

Each statement is short and its own transaction, so it runs beside the service and can be
interrupted at any point: a rerun continues.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from cli.common import database_url, fail, load_settings, migrated
from core.db import create_pool
from core.retention import DEFAULT_BATCH_SIZE, Pruned, prune
from core.settings import Settings


async def _run(settings: Settings, deliveries_days: int, audit_days: int, batch_size: int) -> Pruned | None:
    pool = await create_pool(settings, application_name="reminders-prune")
    try:
        # On stderr with the other messages for humans, so stdout holds only the result.
        async with migrated(pool):
            with Progress(
                TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            ) as progress:  # fmt: skip
                task = progress.add_task("deliveries", total=None)
                return await prune(
                    pool,
                    delivery_retention_days=deliveries_days,
                    audit_retention_days=audit_days,
                    batch_size=batch_size,
                    on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                )
    finally:
        await pool.close()


def _counted(count: int, thing: str, things: str) -> str:
    return f"{count} {thing if count == 1 else things}"


def _kept(days: int) -> str:
    return "all kept" if days == 0 else f"older than {_counted(days, 'day', 'days')}"


def prune_command(
    deliveries_days: Annotated[
        int | None,
        typer.Option(
            "--deliveries-days",
            min=0,
            metavar="DAYS",
            help="Delete finished deliveries older than DAYS; 0 keeps them (default: see above).",
            show_default=False,
        ),
    ] = None,
    audit_days: Annotated[
        int | None,
        typer.Option(
            "--audit-days",
            min=0,
            metavar="DAYS",
            help="Delete audit entries older than DAYS; 0 keeps the whole log (default: see above).",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1, max=100_000, metavar="ROWS", help="Rows deleted per statement (keys, audit entries)."
        ),
    ] = DEFAULT_BATCH_SIZE,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as one JSON object.")] = False,
) -> None:
    """Delete expired idempotency keys, old finished deliveries and (if asked) old audit entries.

    Finished deliveries are acked, sent with no ack due, stopped, or dead-lettered; an ack of a
    deleted one gets 404. Reminders are never deleted. Exits 75, doing nothing, while another
    prune (a poller's, see REMINDERS_PRUNE_INTERVAL_HOURS) runs. Needs REMINDERS_DATABASE_URL.

    DAYS default to the settings REMINDERS_DELIVERY_RETENTION_DAYS (30) and
    REMINDERS_AUDIT_RETENTION_DAYS (0: all).
    """
    settings = load_settings()
    database_url(settings)
    deliveries = settings.delivery_retention_days if deliveries_days is None else deliveries_days
    audit = settings.audit_retention_days if audit_days is None else audit_days
    try:
        result = asyncio.run(_run(settings, deliveries, audit, batch_size))
    except KeyboardInterrupt:
        typer.echo("interrupted: what was deleted so far stays deleted; run again to continue", err=True)
        raise typer.Exit(130) from None
    if result is None:
        fail("another prune (a poller's or another command's) is running; nothing done", code=75)
    if as_json:
        typer.echo(orjson.dumps(asdict(result)).decode())
        return
    keys = _counted(result.idempotency_keys, "expired idempotency key", "expired idempotency keys")
    finished = _counted(result.deliveries, "finished delivery", "finished deliveries")
    entries = _counted(result.audit_entries, "audit entry", "audit entries")
    typer.echo(f"deleted {keys}, {finished} ({_kept(deliveries)}), {entries} ({_kept(audit)})")
