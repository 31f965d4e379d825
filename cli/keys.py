"""`reminders keys create|list|revoke`: manage the API keys stored (hashed) in the database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import asyncpg
import typer

from api.auth import READ, SCOPES, WRITE, new_api_key
from cli.common import database_url, load_settings, migrated
from core.queries import queries

app = typer.Typer(
    help="Manage API keys (stored as SHA-256 hashes; a secret is shown only once).",
    rich_markup_mode="markdown",
)


def _database_url() -> str:
    return database_url(load_settings())


async def _run(sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_database_url())
    try:
        async with migrated(conn):
            return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@app.command()
def create(
    name: Annotated[
        str, typer.Option("--name", metavar="TEXT", help="What the key is for, e.g. the assistant's name.")
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope", metavar="SCOPE", help=f"Repeatable: {', '.join(SCOPES)}. Default: read and write."
        ),
    ] = None,
    assistant: Annotated[
        list[uuid.UUID] | None,
        typer.Option(
            "--assistant",
            metavar="UUID",
            help="Repeatable: an assistant id the key may act for. Default: every one.",
        ),
    ] = None,
) -> None:
    """Create a key and print its secret (once: only its hash is kept)."""
    scopes = sorted(set(scope or [READ, WRITE]))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        typer.echo(f"error: unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}", err=True)
        raise typer.Exit(2)
    key = new_api_key()
    assistants = sorted(set(assistant)) if assistant else None
    (row,) = asyncio.run(
        _run(queries["insert_api_key"], uuid.uuid4(), name, key.prefix, key.secret_hash, scopes, assistants)
    )
    typer.echo(f"id        {row['id']}", err=True)
    typer.echo(f"scopes    {' '.join(scopes)}", err=True)
    typer.echo(f"assistants {'all' if assistants is None else ' '.join(map(str, assistants))}", err=True)
    typer.echo("secret (shown once, store it now):", err=True)
    typer.echo(key.secret)


LIST_HEADER = ("ID", "NAME", "PREFIX", "SCOPES", "ASSISTANTS", "CREATED", "REVOKED")


@app.command("list")
def list_keys() -> None:
    """List the keys of the database: id, name, prefix, scopes, assistants, created, revoked.

    Never a secret. The bootstrap key and REMINDERS_API_KEYS are settings, not listed here.
    """
    rows = [
        (
            str(row["id"]),
            row["name"],
            f"{row['prefix']}…",
            " ".join(row["scopes"]),
            "all" if row["assistant_ids"] is None else ",".join(map(str, row["assistant_ids"])),
            row["created_at"].isoformat(timespec="seconds"),
            row["revoked_at"].isoformat(timespec="seconds") if row["revoked_at"] else "-",
        )
        for row in asyncio.run(_run(queries["list_api_keys"]))
    ]
    if not rows:
        typer.echo("no API keys (create one with `reminders keys create --name NAME`)")
        return
    widths = [max(len(cells[i]) for cells in (LIST_HEADER, *rows)) for i in range(len(LIST_HEADER))]
    for cells in (LIST_HEADER, *rows):
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())


@app.command()
def revoke(
    key_id: Annotated[
        uuid.UUID, typer.Argument(metavar="KEY_ID", help='The key\'s id (see "reminders keys list").')
    ],
) -> None:
    """Revoke a key; requests with it fail from now on."""
    rows = asyncio.run(_run(queries["revoke_api_key"], key_id))
    if not rows:
        typer.echo(f"error: no live key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {rows[0]['id']} ({rows[0]['name']}, {rows[0]['prefix']}…)", err=True)
