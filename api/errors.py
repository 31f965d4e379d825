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

from core import jsontext
from core.exceptions import (
    UNREADABLE_DETAIL,
    Conflict,
    Forbidden,
    InvalidField,
    InvalidSchedule,
    NotFound,
    RetryLater,
    ServiceUnavailable,
)
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


# Where a validation error's ``input`` is never echoed: a payload is the assistant's secret, and
# details its own data; a whole body (a dict or list input) carries the payload too.
_PRIVATE_FIELDS = frozenset({"payload", "details"})
MAX_ECHO_CHARS = 200


def _encodable(value: Any) -> Any:
    """``value`` as the 422 body can always encode it: NaN and infinities as their text ("nan",
    "inf"), lone surrogates as escapes ("\\ud800"), and anything else as a string."""
    if isinstance(value, str):
        return value if value.isascii() else value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, bool | int | None):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return _encodable(str(value))


def _safe_error(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error as it may be answered: no payload, no whole body, nothing unencodable."""
    error = dict(error)
    echoed = error.pop("input", None)
    private = any(part in _PRIVATE_FIELDS for part in error.get("loc", ()))
    if not private and not isinstance(echoed, dict | list):
        if isinstance(echoed, str) and len(echoed) > MAX_ECHO_CHARS:
            echoed = echoed[:MAX_ECHO_CHARS] + "..."
        error["input"] = echoed
    return {key: _encodable(value) for key, value in error.items()}


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The answer's ``detail``: the body's own JSON problem, or each field's error."""
    problem = exc.__cause__
    if isinstance(problem, jsontext.JsonTextError):
        # FastAPI's json_invalid error says only "JSON decode error" at a character offset.
        loc = ["body", *problem.path]
        return [_safe_error({"type": "json_invalid", "loc": loc, "msg": f"invalid JSON: {problem}"})]
    return [_safe_error(error) for error in jsonable_encoder(exc.errors())]


# What a query meets on a database older than the release (or not migrated at all).
NOT_MIGRATED = (
    asyncpg.UndefinedTableError,
    asyncpg.UndefinedColumnError,
    asyncpg.UndefinedFunctionError,
)


def install_error_handlers(app: FastAPI) -> None:  # noqa: C901 (one small handler per error class, registered together)
    """Map NotFound→404, Forbidden→403, Conflict or a stored schedule that cannot be computed→409,
    backing services down or RetryLater→503."""

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

    async def not_migrated(request: Request, exc: Exception) -> JSONResponse:
        # A database that answers without this release's tables or columns: an operator's step is
        # missing (/readyz names it too), not a bug of the request; retryable once it is done.
        _count_error(request, "database")
        log.error("error", kind="not_migrated", path=request.url.path, error=type(exc).__name__)
        return _json(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the database is not migrated to this release: run `reminders migrate`",
            {"Retry-After": RETRY_AFTER_SECONDS},
        )

    async def unreadable(request: Request, exc: Exception) -> JSONResponse:
        # A row read outside the batched GET (a lock, a list page) whose time does not decode.
        log.error("error", kind="unreadable_row", path=request.url.path, error=type(exc).__name__)
        return _json(status.HTTP_409_CONFLICT, UNREADABLE_DETAIL)

    async def schedule_uncomputable(_: Request, exc: Exception) -> JSONResponse:
        # Request fields are validated before any operation runs: one raised here comes from a
        # stored row, e.g. a time zone accepted before the list of names was enforced.
        return _json(
            status.HTTP_409_CONFLICT,
            f"the reminder's schedule cannot be computed: {exc}; change its cron_expression or "
            "timezone, or cancel it",
        )

    async def retry_later(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RetryLater)  # logged where raised, with the ids it concerns
        return _json(
            status.HTTP_503_SERVICE_UNAVAILABLE, str(exc), {"Retry-After": str(exc.retry_after_seconds)}
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        _count_error(request, "unexpected")
        # The type, not the message: a message may quote the input (a UnicodeEncodeError quotes
        # the whole string), and the input may be a payload. The traceback is logged without
        # messages too (core/logging.py).
        log.error("error", kind="unexpected", path=request.url.path, error=type(exc).__name__, exc_info=exc)
        return _json(status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error; it has been logged")

    async def invalid_field(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidField)
        # The same shape as FastAPI's own validation errors, so clients parse one format.
        error = _safe_error({"type": "value_error", "loc": [exc.location, exc.field], "msg": str(exc)})
        return JSONResponse({"detail": [error]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def request_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's own answer, made safe: an input that cannot be encoded (an infinity, a lone
        # surrogate) turned the 422 into a 500, and a payload must not be echoed (see _safe_error).
        detail = _validation_errors(exc)
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(InvalidField, invalid_field)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(InvalidSchedule, schedule_uncomputable)
    app.add_exception_handler(RetryLater, retry_later)
    app.add_exception_handler(OverflowError, unreadable)
    for exc_type in UNAVAILABLE:
        app.add_exception_handler(exc_type, unavailable)
    for missing in NOT_MIGRATED:
        app.add_exception_handler(missing, not_migrated)
    app.add_exception_handler(Exception, unexpected)
