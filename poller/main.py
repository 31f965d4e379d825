"""Entry point of a poller process: ``python -m poller``."""

from __future__ import annotations

import asyncio
import signal
import ssl

import httpx
import redis.asyncio as redis
import structlog
import uvloop
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from core.crypto import PayloadCipher
from core.db import create_pool
from core.exceptions import PayloadKeyError
from core.logging import configure_logging
from core.metrics import Metrics
from core.readiness import check_readiness, migration_heads
from core.settings import Settings
from poller.ops import OpsApp, OpsServer
from poller.push import MIN_REDIS_VERSION, redis_too_old
from poller.worker import Poller

log = structlog.get_logger("poller")


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


async def run(settings: Settings, cipher: PayloadCipher | None = None) -> None:
    """Run one poller until SIGINT or SIGTERM."""
    cipher = cipher or PayloadCipher.from_settings(settings)
    client = redis_client(settings)
    if (version := await redis_too_old(client)) is not None:
        await client.aclose()
        needed = ".".join(map(str, MIN_REDIS_VERSION))
        raise SystemExit(f"error: Redis {version} is too old: pollers need Redis {needed} or newer")
    pool = await create_pool(settings, application_name="reminders-poller")
    # An https API with a private CA: trust that CA (verification stays on).
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(settings.api_ca_file)) if settings.api_ca_file else True
    )
    http = httpx.AsyncClient(base_url=settings.resolved_api_url(), timeout=5, verify=verify)
    metrics = Metrics()
    poller = Poller(settings, pool, client, http, cipher=cipher, metrics=metrics)
    ops: OpsServer | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if settings.metrics_port:
            ops = await start_ops_server(settings, metrics, poller)
        poller.start()
        log.info("poller_started", batch_size=settings.batch_size, poll_interval=settings.poll_interval)
        await stop.wait()
    finally:
        await poller.stop()
        if ops is not None:
            await ops.stop()
        await http.aclose()
        await client.aclose()
        await pool.close()
        log.info("poller_stopped", fired=poller.fired)


async def start_ops_server(settings: Settings, metrics: Metrics, poller: Poller) -> OpsServer | None:
    """Serve /metrics, /healthz and /readyz for this poller; None if its port cannot be bound."""
    heads = await asyncio.to_thread(migration_heads)

    async def readiness() -> dict[str, str]:
        problems = await check_readiness(poller.pool, poller.redis, heads, settings.readiness_timeout)
        if poller.stopping:
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


def main() -> None:
    """Console entry: read settings from the environment and run."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        cipher = PayloadCipher.from_settings(settings)  # no keys: fail before connecting anywhere
    except PayloadKeyError as error:
        raise SystemExit(f"error: {error}") from None
    # uvloop, as the API runs on: its C loop and transports take less of the poller's CPU per reply
    # than asyncio's Python ones (3-5 % less per fire in the 300k burst).
    uvloop.run(run(settings, cipher))
