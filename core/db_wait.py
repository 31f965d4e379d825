"""Waiting for the database at start: retried with capped exponential backoff and jitter.

A process started while PostgreSQL is down (a host reboot, a failover, `docker compose up` in any
order) waits for it rather than exiting: the API listens meanwhile (``/readyz`` 503), a poller
starts its ticks once connected. Every failed attempt is one structured log line naming where it
tried, never with the URL's password.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg
import structlog

from core.db import DATABASE_ERRORS, Pool, create_pool
from core.settings import Settings

log = structlog.get_logger("db")

T = TypeVar("T")
_HIDDEN = "***"


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``initial`` doubling up to ``cap``, each drawn from its upper half.

    The jitter spreads the reconnects of many processes started together (a host's reboot), so the
    database coming back is not met by all of them in the same instant.
    """

    initial: float = 0.5
    cap: float = 10.0

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        full = min(self.cap, self.initial * 2.0 ** min(attempt, 62))
        return full / 2 + draw() * full / 2


def database_target(url: str) -> str:
    """``user@host:port/database`` of a PostgreSQL URL: where it points, without any secret.

    The query string is dropped whole, since it may carry one (``sslpassword``, ``password``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "(unparsable database URL)"
    user = f"{unquote(parts.username)}@" if parts.username else ""
    host = f"[{host}]" if ":" in host else host
    return f"{user}{host}:{port}{parts.path}"


def without_secret(text: str, url: str) -> str:
    """``text`` with the URL's password (as written and decoded) replaced, should an error quote it."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password)} if password else ():
        text = text.replace(secret, _HIDDEN)
    return text


@dataclass(frozen=True)
class Failure:
    """One attempt that found no database: where, which attempt, why, and the wait before the next."""

    component: str
    target: str
    attempt: int
    retry_in: float
    error: str


def log_failure(failure: Failure) -> None:
    """The structured line of a failed attempt (the default report)."""
    log.warning(
        "database_unavailable",
        component=failure.component,
        target=failure.target,
        attempt=failure.attempt,
        retry_in=failure.retry_in,
        error=failure.error,
    )


async def until_connected(
    connect: Callable[[], Awaitable[T]],
    url: str,
    backoff: Backoff,
    *,
    component: str,
    report: Callable[[Failure], None] = log_failure,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """``await connect()``, retried with ``backoff`` for as long as the database does not answer.

    A configuration error (a malformed URL or option) is not an outage and is raised at once; so is
    anything else but a database error. Cancel the caller to stop waiting.
    """
    target = database_target(url)
    attempt = 0
    while True:
        try:
            connected = await connect()
        except asyncpg.ClientConfigurationError:
            raise
        except DATABASE_ERRORS as exc:
            delay = backoff.delay(attempt)
            attempt += 1
            error = without_secret(f"{type(exc).__name__}: {exc}", url)
            report(Failure(component, target, attempt, round(delay, 2), error))
            await sleep(delay)
            continue
        if attempt:
            log.info("database_connected", component=component, target=target, attempts=attempt + 1)
        return connected


def connect_backoff(settings: Settings) -> Backoff:
    """The startup backoff the settings ask for."""
    return Backoff(settings.db_connect_retry_initial, settings.db_connect_retry_max_delay)


async def open_pool(settings: Settings, *, application_name: str, reset_sessions: bool = True) -> Pool:
    """:func:`core.db.create_pool`, waited for: retried with backoff until the database answers."""
    url = settings.require_database_url()
    return await until_connected(
        lambda: create_pool(settings, application_name=application_name, reset_sessions=reset_sessions),
        url,
        connect_backoff(settings),
        component=application_name,
    )
