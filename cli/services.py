"""The data directory, the servers and the keys that `reminders up` and `services` share."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import typer
from cryptography.fernet import Fernet
from pydantic import SecretStr

from core.crypto import PayloadCipher
from core.embedded import ensure_database, start_postgres, start_redis
from core.exceptions import PayloadKeyError
from core.settings import Settings

DATABASE_NAME = "reminders"
KEY_FILE = "bootstrap_api_key"
PAYLOAD_KEY_FILE = "payload_key"
KEY_PREFIX = "rmd_"

_Handler = Callable[[int, FrameType | None], Any] | int | None


class StartupError(Exception):
    """A problem the user can fix (port taken, data dir in use); printed without a traceback."""


@dataclass(frozen=True)
class Services:
    """Where the database and Redis are, and whether we started them here."""

    database_url: str
    redis_url: str
    embedded_postgres: bool
    embedded_redis: bool
    # (name, is_running) of each server started here, so `up` notices one dying.
    health: tuple[tuple[str, Callable[[], bool]], ...] = ()


def say(message: str) -> None:
    """Progress for humans, on stderr so stdout stays clean for `export` lines."""
    typer.echo(message, err=True)


class Signals:
    """SIGINT and SIGTERM both stop the run; once stopping, further signals cannot cut cleanup short."""

    def __init__(self) -> None:
        self.stopping = False
        self._previous: dict[int, _Handler] = {}

    def __enter__(self) -> Signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping:
            say(f"{signal.Signals(signum).name}: already stopping, please wait")
            return
        self.stopping = True
        raise KeyboardInterrupt


@contextlib.contextmanager
def lock_data_dir(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir`` so two runs never share (and stop) one set of servers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = (data_dir / ".lock").open("a")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"{data_dir} is in use by another `reminders up` or `reminders services`; "
                "stop that one first, or set REMINDERS_DATA_DIR to another directory"
            ) from None
        yield
    finally:
        handle.close()  # closing the file releases the lock


def start_services(
    settings: Settings,
    stack: contextlib.ExitStack,
    *,
    embedded_only: bool = False,
    pg_port: int | None = None,
    redis_port: int | None = None,
) -> Services:
    """Use the configured URLs, or start embedded servers under the data dir (``stack`` stops them)."""
    data_dir = settings.data_dir.resolve()
    database_url = None if embedded_only else settings.database_url
    redis_url = None if embedded_only else settings.redis_url
    embedded_pg, embedded_redis = database_url is None, redis_url is None
    health: list[tuple[str, Callable[[], bool]]] = []
    if database_url is None:
        pg_dir = data_dir / "postgres"
        first_run = not (pg_dir / "PG_VERSION").exists()
        say(f"starting PostgreSQL in {pg_dir}" + (" (first run: initdb)" if first_run else ""))
        started = time.monotonic()
        postgres = start_postgres(pg_dir, pg_port)
        stack.callback(_announce, "stopping PostgreSQL", postgres.stop)
        health.append(("PostgreSQL", postgres.is_running))
        database_url = ensure_database(postgres.url, DATABASE_NAME)
        say(f"PostgreSQL ready on 127.0.0.1:{postgres.port} ({time.monotonic() - started:.1f}s)")
    if redis_url is None:
        say(f"starting Redis in {data_dir / 'redis'}")
        started = time.monotonic()
        redis = start_redis(data_dir / "redis", redis_port)
        stack.callback(_announce, "stopping Redis", redis.stop)
        health.append(("Redis", redis.is_running))
        redis_url = redis.url
        say(f"Redis ready on 127.0.0.1:{redis.port} ({time.monotonic() - started:.1f}s)")
    return Services(database_url, redis_url, embedded_pg, embedded_redis, tuple(health))


def _announce(message: str, action: Callable[[], None]) -> None:
    say(message)
    action()


def bootstrap_key(settings: Settings) -> str:
    """REMINDERS_BOOTSTRAP_API_KEY, else the key kept in the data dir (made on first use)."""
    if settings.bootstrap_api_key is not None:
        return settings.bootstrap_api_key.get_secret_value()
    path = settings.data_dir.resolve() / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text().strip()
        if existing:
            return existing
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(fd, 0o600)  # the mode given to open() only applies when the file is new
        handle.write(key + "\n")
    return key


def payload_keys(settings: Settings) -> str:
    """REMINDERS_PAYLOAD_KEYS, else the keys kept in the data dir (a fresh Fernet key on first use).

    The file holds the same comma-separated value as the variable (first key encrypts), mode 0600;
    losing it makes every stored payload unreadable, so it is never overwritten here.
    """
    if settings.payload_keys is not None:
        value = settings.payload_keys.get_secret_value()
    else:
        path = settings.data_dir.resolve() / PAYLOAD_KEY_FILE
        value = ""
        with contextlib.suppress(FileNotFoundError):
            value = path.read_text().strip()
        if not value:
            value = Fernet.generate_key().decode()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                os.fchmod(fd, 0o600)
                handle.write(value + "\n")
    try:
        PayloadCipher.from_settings(settings.model_copy(update={"payload_keys": SecretStr(value)}))
    except PayloadKeyError as error:
        raise StartupError(str(error)) from None
    return value


def run_services(
    settings: Settings, pg_port: int | None, redis_port: int | None, echo: Callable[[str], None]
) -> None:
    """Start embedded Postgres and Redis, ``echo`` their URLs as `export` lines, wait for Ctrl-C."""
    data_dir = settings.data_dir.resolve()
    with Signals() as signals, lock_data_dir(data_dir), contextlib.ExitStack() as stack:
        try:
            found = start_services(
                settings, stack, embedded_only=True, pg_port=pg_port, redis_port=redis_port
            )
            echo(f"export REMINDERS_DATABASE_URL={found.database_url}")
            echo(f"export REMINDERS_REDIS_URL={found.redis_url}")
            say("running; Ctrl-C stops both servers")
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            signals.stopping = True
