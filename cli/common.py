"""What the `status`, `tail`, `api` and `poller` commands share: settings and clean errors."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from pydantic import ValidationError

from core.settings import Settings


def fail(message: object, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit: a problem the user can fix needs no traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the REMINDERS_* environment, or a clean exit naming the bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()))


def database_url(settings: Settings) -> str:
    """REMINDERS_DATABASE_URL, found as `keys` finds it (the environment; `make run` prints it)."""
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
