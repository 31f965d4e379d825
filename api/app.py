"""The FastAPI application factory (``uvicorn --factory api.app:create_app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import KeyRing
from api.errors import install_error_handlers
from api.limits import BodyLimit, RateLimit, RateLimiter
from api.request_id import RequestIdMiddleware
from api.routes import health, reminders
from api.tokens import TokenVerifier
from core.crypto import PayloadCipher
from core.db import create_pool
from core.logging import configure_logging
from core.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; settings default to the ``REMINDERS_*`` environment."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings, application_name="reminders-api")
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="Reminder Service",
        version="0.1.0",
        description="One-time and recurring (cron) reminders for assistants; events arrive in the "
        "Redis list `queue:to_assistant`. Authenticate with the `X-API-Key` header.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keyring = KeyRing.from_settings(settings)
    # Payload encryption: no REMINDERS_PAYLOAD_KEYS means the API cannot start (a clear error).
    app.state.cipher = PayloadCipher.from_settings(settings)
    app.state.tokens = TokenVerifier(settings)
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    # The last one added runs first: the rate limit refuses before any body is read.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        RateLimit, limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    )
    app.include_router(reminders.router)
    app.include_router(health.router)
    return app
