"""Typed errors for the API's error answers, each carrying the ``detail`` the API sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a 422: ``field`` is its dotted name (``dst_policy.gap``), ``""`` for the body."""

    field: str
    message: str
    location: str = "body"
    type: str = ""


class ApiError(Exception):
    """Any non-2xx answer: its status code and the API's ``detail`` (a string, or a list for 422)."""

    def __init__(self, status_code: int, detail: Any, *, request_id: str | None = None) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.request_id = request_id


class BadRequest(ApiError):
    """400: the body could not be parsed at all."""


class Unauthorized(ApiError):
    """401: missing, invalid, expired or revoked credentials."""


class Forbidden(ApiError):
    """403: the credential lacks the scope, or does not cover that assistant."""


class NotFound(ApiError):
    """404: no such reminder (or not one this credential may see), or no such event."""


class Conflict(ApiError):
    """409: impossible in the reminder's current state, or the assistant's cap is reached."""


class PayloadTooLarge(ApiError):
    """413: the request body is over the API's limit."""


class ValidationFailed(ApiError):
    """422: ``errors`` names each invalid field and says what is wrong with it."""

    def __init__(self, status_code: int, detail: Any, *, request_id: str | None = None) -> None:
        super().__init__(status_code, detail, request_id=request_id)
        self.errors = field_errors(detail)

    @property
    def fields(self) -> list[str]:
        """The names of the invalid fields, in the API's order."""
        return [error.field for error in self.errors]


class _RetryLater(ApiError):
    def __init__(
        self,
        status_code: int,
        detail: Any,
        *,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status_code, detail, request_id=request_id)
        self.retry_after = retry_after


class RateLimited(_RetryLater):
    """429: this credential's rate limit is spent; ``retry_after`` seconds until it is not."""


class Unavailable(_RetryLater):
    """503: the database is down or saturated; retry after ``retry_after`` seconds."""


class ServerError(ApiError):
    """5xx other than 503: a bug on the server side (it has been logged there)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
}


def field_errors(detail: Any) -> list[FieldError]:
    """FastAPI's ``[{"loc": [...], "msg": ..., "type": ...}]`` as ``FieldError`` items."""
    if not isinstance(detail, list):
        return [FieldError(field="", message=str(detail))]
    errors: list[FieldError] = []
    for item in detail:
        if not isinstance(item, dict):
            errors.append(FieldError(field="", message=str(item)))
            continue
        loc = [str(part) for part in item.get("loc", [])]
        # The first element says where (body, query...); the rest is the path to the field.
        location = loc[0] if loc and loc[0] in _LOCATIONS else ""
        path = loc[1:] if location else loc
        errors.append(
            FieldError(
                field=".".join(path),
                message=str(item.get("msg", "")),
                location=location,
                type=str(item.get("type", "")),
            )
        )
    return errors


def retry_after(value: str | None) -> float | None:
    """The ``Retry-After`` header in seconds; None when absent or an HTTP date (not sent by this API)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def error_for(response: httpx.Response) -> ApiError:
    """The typed error for a non-2xx answer, its ``detail`` taken from the JSON body when there is one."""
    code = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body["detail"] if isinstance(body, dict) and "detail" in body else (body or response.text)
    request_id = response.headers.get("X-Request-ID")
    if code in (429, 503):
        kind: type[_RetryLater] = RateLimited if code == 429 else Unavailable
        wait = retry_after(response.headers.get("Retry-After"))
        return kind(code, detail, request_id=request_id, retry_after=wait)
    if code in _BY_STATUS:
        return _BY_STATUS[code](code, detail, request_id=request_id)
    return (ServerError if code >= 500 else ApiError)(code, detail, request_id=request_id)
