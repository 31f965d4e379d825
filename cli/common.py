"""What the commands share: settings (the running `reminders up`'s where unset) and clean errors."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import NoReturn

import asyncpg
import typer
from pydantic import SecretStr, ValidationError

from cli.running import RUNNING_FILE as RUNNING_FILE  # where `up` says where it is
from cli.running import read_running
from core.crypto import PayloadCipher
from core.db import Pool
from core.exceptions import PayloadCryptoError
from core.queries import queries
from core.readiness import migration_heads
from core.settings import Settings

NOT_MIGRATED = "the database is not migrated: run `reminders migrate`"
# A query of this release on a schema that lacks its tables or columns.
SCHEMA_ERRORS = (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError)


def fail(message: object, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit: a problem the user can fix needs no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the REMINDERS_* environment, or a clean exit naming the bad variable.

    Database and Redis URLs not set there come from a `reminders up` running on this data dir.
    """
    try:
        settings = Settings()
    except ValidationError as error:
        fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()))
    return with_running_services(settings)


def with_running_services(settings: Settings) -> Settings:
    """``settings`` with the URLs of the running `reminders up` filled in where unset."""
    running = read_running(settings.data_dir)
    if running is None:
        return settings
    update = {
        name: getattr(running, name)
        for name in ("database_url", "redis_url")
        if getattr(settings, name) is None and getattr(running, name) is not None
    }
    return settings.model_copy(update=update) if update else settings


def service_env(settings: Settings) -> dict[str, str]:
    """The REMINDERS_* variables of ``settings``' database and Redis URLs, for a process started with them."""
    urls = {"REMINDERS_DATABASE_URL": settings.database_url, "REMINDERS_REDIS_URL": settings.redis_url}
    return {name: url for name, url in urls.items() if url is not None}


def payload_cipher(settings: Settings) -> PayloadCipher:
    """The cipher of REMINDERS_PAYLOAD_KEYS, else of the running `reminders up`'s key file; else exit."""
    if settings.payload_keys is None:
        running = read_running(settings.data_dir)
        keys = running.payload_keys() if running is not None else None
        if keys is not None:
            settings = settings.model_copy(update={"payload_keys": SecretStr(keys)})
    try:
        return PayloadCipher.from_settings(settings)
    except PayloadCryptoError as error:
        fail(error)


def database_url(settings: Settings) -> str:
    """REMINDERS_DATABASE_URL, or the database of the `reminders up` running here."""
    try:
        return settings.require_database_url()
    except RuntimeError as error:
        fail(error)


def redis_url(settings: Settings) -> str:
    """REMINDERS_REDIS_URL, found the same way."""
    try:
        return settings.require_redis_url()
    except RuntimeError as error:
        fail(error)


def reader_gone() -> NoReturn:
    """Exit quietly once stdout's reader has gone (``| head``), as ``tail -f`` does, not with an error."""
    # Python flushes stdout again at exit; pointing it at /dev/null keeps that from failing too.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(0)


@asynccontextmanager
async def migrated(db: asyncpg.Connection | Pool) -> AsyncIterator[None]:
    """Turn a query failing on a missing table or column into ``error: ... run `reminders migrate```."""
    try:
        yield
    except SCHEMA_ERRORS:
        fail(await schema_problem(db))


async def schema_problem(db: asyncpg.Connection | Pool) -> str:
    """Why this release's queries do not find their tables: no migration at all, or an older one."""
    try:
        rows = await db.fetch(queries["schema_versions"])
    except asyncpg.UndefinedTableError:
        return NOT_MIGRATED
    applied = ", ".join(sorted(row["version_num"] for row in rows)) or "no revision"
    head = ", ".join(sorted(migration_heads()))
    return f"{NOT_MIGRATED} (the database is at {applied}, this release needs {head})"
