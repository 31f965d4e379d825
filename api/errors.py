"""The one place where the service's exceptions become HTTP answers."""

from __future__ import annotations

import math
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from core.exceptions import Conflict, Forbidden, InvalidField, NotFound, RetryLater, ServiceUnavailable
from core.metrics import Metrics

log = structlog.get_logger("api")

RETRY_AFTER_SECONDS = "5"

# Postgres unreachable, restarting, or the pool saturated: the client should retry, not see a 500.
UNAVAILABLE = (
    ServiceUnavailable,
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
    # A connection the server is terminating mid-acquire (fast shutdown) surfaces as this
    # (MagicStack/asyncpg#784); it is the same "database going away", not a bug of ours.
    asyncpg.InternalClientError,
)


def _json(code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


def _count_error(request: Request, kind: str) -> None:
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.errors.labels("api", kind).inc()


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by its text ("nan", "inf", "-inf")."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    return value


def install_error_handlers(app: FastAPI) -> None:
    """Map NotFound→404, Forbidden→403, Conflict→409, backing services down or RetryLater→503."""

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return _json(status.HTTP_404_NOT_FOUND, str(exc))

    async def forbidden(_: Request, exc: Exception) -> JSONResponse:
        return _json(status.HTTP_403_FORBIDDEN, str(exc))

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return _json(status.HTTP_409_CONFLICT, str(exc))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        _count_error(request, "database")
        log.error("error", kind="service_unavailable", path=request.url.path, error=repr(exc))
        return _json(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the database is unavailable right now; retry shortly",
            {"Retry-After": RETRY_AFTER_SECONDS},
        )

    async def retry_later(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RetryLater)  # logged where raised, with the ids it concerns
        return _json(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), {"Retry-After": str(exc.retry_after_seconds)}
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _count_error(request, "unexpected")
        log.error("error", kind="unexpected", path=request.url.path, error=repr(exc), exc_info=exc)
        return _json(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error; it has been logged")

    async def invalid_field(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidField)
        # The same shape as FastAPI's own validation errors, so clients parse one format.
        error = {"type": "value_error", "loc": [exc.location, exc.field], "msg": str(exc)}
        return JSONResponse({"detail": [error]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def request_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's own answer, except that a non-finite number the JSON parser let in (NaN,
        # Infinity) is echoed as text: as a float it cannot be encoded, and the 422 became a 500.
        detail = _finite(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(InvalidField, invalid_field)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(RetryLater, retry_later)
    for exc_type in UNAVAILABLE:
        app.add_exception_handler(exc_type, unavailable)
    app.add_exception_handler(Exception, unexpected)
