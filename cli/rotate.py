"""``reminders rotate-payload-keys``: re-encrypt every stored payload under the primary key.

Put the new key first in REMINDERS_PAYLOAD_KEYS (keep the old ones after it), restart the API and
pollers (new rows then use the new key), and run this command. It works in batches, each its own
short transaction (``FOR UPDATE SKIP LOCKED``), so it never blocks the service for long and can be
interrupted at any point: a rerun simply continues with the rows still on an older key (or still in
plaintext, from before encryption). Once it reports nothing left, the old keys can be dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.common import database_url, fail, load_settings, migrated, payload_cipher
from core.crypto import PayloadCipher
from core.db import Pool, create_pool
from core.exceptions import PayloadCryptoError
from core.queries import queries
from core.settings import Settings

DEFAULT_BATCH_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a run did: rows re-encrypted, and rows still not under the primary key afterwards."""

    rotated: int
    remaining: int


async def payloads_to_rotate(pool: Pool, cipher: PayloadCipher) -> int:
    """How many reminders hold a payload not under the primary key (older key or plaintext)."""
    return int(await pool.fetchval(queries["count_payloads_to_rotate"], cipher.key_id))


async def rotate_payloads(
    pool: Pool,
    cipher: PayloadCipher,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[int], None] = lambda _rows: None,
) -> Rotation:
    """Re-encrypt, batch by batch, every payload not under ``cipher``'s primary key.

    Raises PayloadCryptoError, before changing anything, when some rows were encrypted under a key
    the ring does not hold. ``on_batch`` is told how many rows each committed batch re-encrypted.
    """
    unknown = [r[0] for r in await pool.fetch(queries["unknown_payload_key_ids"], list(cipher.key_ids))]
    if unknown:
        raise PayloadCryptoError(
            f"some payloads are encrypted under key ids {', '.join(unknown)}, which are not in "
            f"REMINDERS_PAYLOAD_KEYS (its key ids: {', '.join(cipher.key_ids)}); add those keys "
            "after the primary one"
        )
    rotated = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(queries["lock_payloads_to_rotate"], cipher.key_id, batch_size)
            if not rows:
                break
            tokens = [
                cipher.rotate(row["payload_ciphertext"])
                if row["payload_ciphertext"] is not None
                else cipher.encrypt(row["payload"])
                for row in rows
            ]
            await conn.execute(
                queries["store_rotated_payloads"], [row["id"] for row in rows], tokens, cipher.key_id
            )
        rotated += len(rows)
        on_batch(len(rows))
    # Rows locked by someone else were skipped; they are what a rerun picks up.
    return Rotation(rotated, await payloads_to_rotate(pool, cipher))


async def _run(settings: Settings, cipher: PayloadCipher, batch_size: int) -> Rotation:
    pool = await create_pool(settings, application_name="reminders-rotate-payload-keys")
    try:
        async with migrated(pool):
            total = await payloads_to_rotate(pool, cipher)
            if total == 0:
                return Rotation(0, 0)
            # On stderr with the other messages for humans, so stdout holds only the result line.
            with Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=Console(stderr=True),
            ) as progress:  # fmt: skip
                task = progress.add_task(f"re-encrypting under key {cipher.key_id}", total=total)
                return await rotate_payloads(
                    pool, cipher, batch_size=batch_size, on_batch=lambda rows: progress.advance(task, rows)
                )
    finally:
        await pool.close()


def rotate_payload_keys(
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, metavar="ROWS", help="Rows re-encrypted per transaction.")
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Re-encrypt every stored payload under the first key of REMINDERS_PAYLOAD_KEYS.

    Rows on an older key (or plaintext rows from before encryption) are re-encrypted in batches,
    each its own short transaction; safe to interrupt and run again. Needs REMINDERS_DATABASE_URL
    and REMINDERS_PAYLOAD_KEYS, or a running "reminders up" (its key file, .data/payload_key).
    """
    settings = load_settings()
    database_url(settings)
    cipher = payload_cipher(settings)
    try:
        result = asyncio.run(_run(settings, cipher, batch_size))
    except PayloadCryptoError as error:
        fail(error)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        fail(f"cannot re-encrypt the payloads: {error!r}")
    except KeyboardInterrupt:
        typer.echo("interrupted: the batches done so far are kept; run again to continue", err=True)
        raise typer.Exit(130) from None
    if result.remaining:
        typer.echo(
            f"re-encrypted {result.rotated} payloads; {result.remaining} were busy (locked) and are "
            "still on an older key: run again",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"re-encrypted {result.rotated} payloads; every payload is under key {cipher.key_id}")
