"""The FastAPI application factory (``uvicorn --factory api.app:create_app``)."""

from __future__ import annotations

import asyncio
import contextlib
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as redis
from fastapi import FastAPI

from api import http_protocol
from api.auth import KeyRing
from api.deps import security_openapi
from api.docs_pages import install_docs
from api.errors import install_error_handlers
from api.event_schema import install_webhooks
from api.fast_paths import install_fast_paths
from api.headers import HeadAsGet, SecurityHeaders
from api.http_metrics import HttpMetrics
from api.limits import BodyLimit, RateLimiter
from api.openapi import complete_document
from api.request_id import RequestIdMiddleware
from api.routes import health, reminders
from api.starting import UntilConnected
from api.tokens import TokenVerifier
from core.crypto import PayloadCipher
from core.db_wait import open_pool
from core.logging import configure_logging
from core.metrics import Metrics
from core.readiness import migration_heads
from core.settings import Settings
from core.stats import refresh_forever
from core.store.reminders import Creates, Reads

# How long the lifespan waits for the first connection before listening without one.
FIRST_CONNECT_WAIT = 1.0


def create_app(settings: Settings | None = None, metrics: Metrics | None = None) -> FastAPI:
    """Build the API; settings default to the ``REMINDERS_*`` environment, metrics to a fresh set."""
    settings = settings or Settings()
    metrics = metrics or Metrics()
    configure_logging(settings.log_level, settings.log_format)
    http_protocol.configure(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Used by /readyz and the state gauges only; connects on first use.
        app.state.redis = redis.from_url(
            settings.require_redis_url(), socket_timeout=5, socket_connect_timeout=5
        )
        stop_stats, connected = asyncio.Event(), asyncio.Event()

        async def connect() -> None:
            # Until this sets the pool, UntilConnected answers 503 and /readyz names the database.
            pool = await open_pool(settings, application_name="reminders-api", reset_sessions=False)
            app.state.pool = pool
            connected.set()
            if settings.stats_interval > 0:
                await refresh_forever(metrics, pool, app.state.redis, settings.stats_interval, stop_stats)

        connecting = asyncio.create_task(connect(), name="connect-database")
        # A database that answers is connected before the first request (the tests, a normal
        # start); one that does not is waited for in the background while the API listens.
        waiting = asyncio.ensure_future(connected.wait())
        await asyncio.wait({connecting, waiting}, timeout=FIRST_CONNECT_WAIT, return_when=FIRST_COMPLETED)
        waiting.cancel()
        try:
            if connecting.done():
                connecting.result()  # a configuration error (no URL, a malformed one) fails the start
            yield
        finally:
            stop_stats.set()
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            await app.state.redis.aclose()
            pool = getattr(app.state, "pool", None)
            if pool is not None:
                await pool.close()

    # No ORJSONResponse as default_response_class: this FastAPI serializes a route's declared return
    # type straight to JSON bytes in pydantic-core (2.5 us for a Reminder, against 3.3 us for the
    # ORJSONResponse path and 38 us for jsonable_encoder), and only while the class is left default.
    app = FastAPI(
        title="Reminder Service",
        version="0.1.0",
        description="One-time and recurring (cron) reminders for assistants; events arrive in the "
        "Redis list `queue:to_assistant`. Authenticate with the `X-API-Key` header.",
        lifespan=lifespan,
        # Served by install_docs from the vendored assets rather than a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    # Read once: /readyz compares the database's alembic_version with it.
    app.state.migration_heads = migration_heads()
    app.state.keyring = KeyRing.from_settings(settings)
    # Payload encryption: no REMINDERS_PAYLOAD_KEYS means the API cannot start (a clear error).
    app.state.cipher = PayloadCipher.from_settings(settings)
    app.state.tokens = TokenVerifier(settings)
    app.state.creates = Creates(settings.max_live_reminders_per_assistant)
    app.state.reads = Reads()
    install_error_handlers(app)
    # Innermost: its 503 gets the request id, the security headers and the metrics of any answer.
    app.add_middleware(UntilConnected, state=app.state)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeadAsGet)
    # Outside the others, so their answers (413) carry the headers too.
    app.add_middleware(SecurityHeaders, router=app.router)
    # Spent by api/deps.py's authenticate, which knows the credential that authenticated.
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.anonymous_limiter = RateLimiter(
        settings.unauthenticated_rate_limit_per_second, settings.unauthenticated_rate_limit_burst
    )
    # Outermost, so the latency includes every middleware and the answers they give (413).
    app.add_middleware(HttpMetrics, metrics=metrics)
    app.include_router(reminders.router)
    app.include_router(health.router)
    install_docs(app)
    install_webhooks(app)
    security_openapi(app)
    complete_document(app)
    install_fast_paths(app)
    return app
