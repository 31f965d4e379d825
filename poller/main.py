"""Entry point of a poller process: ``python -m poller``."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import redis.asyncio as redis
import structlog
import uvloop
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from core.crypto import PayloadCipher
from core.db import Pool
from core.db_wait import open_pool
from core.exceptions import PayloadKeyError
from core.logging import configure_logging
from core.metrics import Metrics
from core.readiness import check_readiness, migration_heads
from core.settings import Settings
from poller.ops import OpsApp, OpsServer
from poller.push import MIN_REDIS_VERSION, redis_too_old
from poller.worker import Poller

log = structlog.get_logger("poller")

T = TypeVar("T")


def redis_client(settings: Settings) -> redis.Redis:
    """The poller's Redis client: 5 s per call, and one try.

    A push runs inside its claim's transaction, which redis-py's own retries (ten in redis-py 8, up
    to 5 s each against a Redis that does not answer) would hold open past the database's idle
    timeout. A failed call goes to the poller's backoff instead, and a failed push leaves its fires
    pending for the sweep.
    """
    return redis.from_url(
        settings.require_redis_url(),
        socket_timeout=5,
        socket_connect_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


@dataclass
class Started:
    """What a poller process has so far: its Redis client, and its Poller once the pool is open."""

    redis: redis.Redis
    poller: Poller | None = None


async def run(settings: Settings, cipher: PayloadCipher | None = None) -> None:
    """Run one poller until SIGINT or SIGTERM; a database that does not answer yet is waited for."""
    cipher = cipher or PayloadCipher.from_settings(settings)
    client = redis_client(settings)
    if (version := await redis_too_old(client)) is not None:
        await client.aclose()
        needed = ".".join(map(str, MIN_REDIS_VERSION))
        raise SystemExit(f"error: Redis {version} is too old: pollers need Redis {needed} or newer")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics()
    started = Started(client)
    # Up before the pool, so /readyz says what the poller waits for (the database) meanwhile.
    ops = await start_ops_server(settings, metrics, started) if settings.metrics_port else None
    pool: Pool | None = None
    http: httpx.AsyncClient | None = None
    try:
        pool = await until_stopped(open_pool(settings, application_name="reminders-poller"), stop)
        if pool is None:
            return  # stopped while waiting for the database
        # An https API with a private CA: trust that CA (verification stays on).
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(settings.api_ca_file)) if settings.api_ca_file else True
        )
        http = httpx.AsyncClient(base_url=settings.resolved_api_url(), timeout=5, verify=verify)
        poller = started.poller = Poller(settings, pool, client, http, cipher=cipher, metrics=metrics)
        try:
            poller.start()
            log.info("poller_started", batch_size=settings.batch_size, poll_interval=settings.poll_interval)
            await stop.wait()
        finally:
            await poller.stop()
            log.info("poller_stopped", fired=poller.fired)
    finally:
        if ops is not None:
            await ops.stop()
        if http is not None:
            await http.aclose()
        await client.aclose()
        if pool is not None:
            await pool.close()


async def until_stopped(opening: Coroutine[Any, Any, T], stop: asyncio.Event) -> T | None:
    """The result of ``opening``, or None if ``stop`` is set first (``opening`` is then cancelled)."""
    task = asyncio.ensure_future(opening)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (task, stopped):
            future.cancel()
        await asyncio.gather(task, stopped, return_exceptions=True)
    return None if task.cancelled() else task.result()


async def start_ops_server(settings: Settings, metrics: Metrics, started: Started) -> OpsServer | None:
    """Serve /metrics, /healthz and /readyz for this poller; None if its port cannot be bound."""
    heads = await asyncio.to_thread(migration_heads)

    async def readiness() -> dict[str, str]:
        poller = started.poller
        pool = None if poller is None else poller.pool
        problems = await check_readiness(pool, started.redis, heads, settings.readiness_timeout)
        if poller is not None and poller.stopping:
            problems["poller"] = "stopping"
        return problems

    server = OpsServer(OpsApp(metrics, readiness), settings.metrics_host, settings.metrics_port)
    try:
        await server.start()
    except OSError as exc:
        # Firing matters more than being scraped: a taken port costs the metrics, not the poller.
        metrics.errors.labels("poller", "ops_server").inc()
        log.error(
            "ops_server_failed",
            host=settings.metrics_host,
            port=settings.metrics_port,
            error=repr(exc),
            hint="set REMINDERS_METRICS_PORT to a free port (0 turns the server off)",
        )
        return None
    return server


def main(settings: Settings | None = None) -> None:
    """Run one poller with ``settings`` (by default read from the ``REMINDERS_*`` environment)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        cipher = PayloadCipher.from_settings(settings)  # no keys: fail before connecting anywhere
    except PayloadKeyError as error:
        raise SystemExit(f"error: {error}") from None
    # uvloop, as the API runs on: its C loop and transports take less of the poller's CPU per reply
    # than asyncio's Python ones (3-5 % less per fire in the 300k burst).
    uvloop.run(run(settings, cipher))
