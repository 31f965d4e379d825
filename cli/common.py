"""What the `status`, `tail`, `api` and `poller` commands share: settings and clean errors."""

from __future__ import annotations

import json
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


# Written by `reminders up` while it runs: where its servers are, so the other commands find them.
RUNNING_FILE = "running.json"


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
    try:
        running = json.loads((settings.data_dir / RUNNING_FILE).read_text())
    except (OSError, ValueError):
        return settings
    update = {
        name: running[name]
        for name in ("database_url", "redis_url")
        if getattr(settings, name) is None and isinstance(running.get(name), str)
    }
    return settings.model_copy(update=update) if update else settings


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
