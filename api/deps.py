"""FastAPI dependencies: the pool, Redis, metrics, the calling principal, and the scope each route needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import redis.asyncio as redis
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import APIKeyHeader, HTTPBearer

from api.auth import (
    READ,
    WRITE,
    AmbiguousCredentials,
    KeyRing,
    Presented,
    Principal,
    authenticate_key,
    presented_credential,
)
from api.limits import RateLimiter
from api.tokens import InvalidToken, TokenVerifier
from core.crypto import PayloadCipher
from core.db import Pool
from core.metrics import Metrics
from core.settings import Settings

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
_bearer = HTTPBearer(auto_error=False, description="A JWT signed by your identity provider")
CHALLENGE = {"WWW-Authenticate": 'ApiKey, Bearer realm="reminders"'}
# Where ``authenticate`` keeps the request's principal in its ASGI scope.
PRINCIPAL = "reminders.principal"


# The getters are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency
# in its thread pool, which costs a thread hand-off per dependency per request for one getattr.
async def get_pool(request: Request) -> Pool:
    """The process's asyncpg pool, opened in the app's lifespan."""
    pool: Pool = request.app.state.pool
    return pool


async def get_open_pool(request: Request) -> Pool | None:
    """The pool, or None while the API still waits for the database at start (api/starting.py)."""
    pool: Pool | None = getattr(request.app.state, "pool", None)
    return pool


async def get_metrics(request: Request) -> Metrics:
    """The process's metrics, made with the app."""
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_redis(request: Request) -> redis.Redis | None:
    """The Redis client opened in the app's lifespan (None before it ran, or without one)."""
    client: redis.Redis | None = getattr(request.app.state, "redis", None)
    return client


async def get_migration_heads(request: Request) -> frozenset[str]:
    """The migration scripts' head revision(s), read when the app was created."""
    heads: frozenset[str] = request.app.state.migration_heads
    return heads


async def get_cipher(request: Request) -> PayloadCipher:
    """The payload cipher built from settings when the app was created."""
    cipher: PayloadCipher = request.app.state.cipher
    return cipher


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=CHALLENGE)


def _limited(limiter: RateLimiter, key: bytes) -> None:
    """429 with ``Retry-After`` once ``key`` has spent its bucket."""
    wait = limiter.retry_after(key)
    if wait:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"rate limit exceeded; retry after {wait} s",
            headers={"Retry-After": str(wait)},
        )


async def _verify(request: Request, presented: Presented | None) -> tuple[Principal | None, str]:
    """The principal of ``presented``, or None and why not."""
    state = request.app.state
    if presented is None:
        return None, "missing credentials: send X-API-Key or Authorization: Bearer"
    if presented.kind == "api_key":
        pool: Pool = state.pool
        keyring: KeyRing = state.keyring
        return await authenticate_key(pool, keyring, presented.secret), "invalid API key"
    verifier: TokenVerifier = state.tokens
    try:
        return verifier.verify(presented.secret), ""
    except InvalidToken as exc:
        # The reason (expired, wrong audience...) helps the caller and reveals nothing secret.
        return None, f"invalid bearer token: {exc}"


async def authenticate(request: Request) -> Principal:
    """The caller behind its one ``X-API-Key`` or ``Authorization: Bearer`` header, else 400/401/429.

    Rate limited after authentication, so the bucket is the credential that authenticated (its
    principal), whatever else the request carries; a request with no valid credential spends the
    bucket of its client address instead, before its 401. The principal is kept in the scope: a
    request the fast path declines is not authenticated (nor charged) twice.
    """
    scope = request.scope
    known: Principal | None = scope.get(PRINCIPAL)
    if known is not None:
        return known
    try:
        presented = presented_credential(scope["headers"])
    except AmbiguousCredentials as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(exc)) from None
    principal, reason = await _verify(request, presented)
    state = request.app.state
    if principal is None:
        client = scope.get("client")
        _limited(state.anonymous_limiter, (client[0] if client else "").encode())
        raise _unauthorized(reason)
    _limited(state.rate_limiter, principal.credential_id.encode())
    scope[PRINCIPAL] = principal
    return principal


# The dependencies that authenticate (requiring(...)): the OpenAPI schema lists the two credential
# schemes on every route that uses one (see security_openapi).
AUTH_DEPENDENCIES: set[Callable[..., Any]] = set()


def requiring(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates the caller (401) and lets it through only with ``scope`` (403).

    One dependency that reads the credential headers itself rather than nested ``Security`` ones:
    each dependency FastAPI solves costs about as much as the header parsing and the key check
    together, on every request. The schemes still appear in the OpenAPI schema through
    ``security_openapi``.
    """

    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        if not principal.has_scope(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"this credential lacks the scope {scope!r}"
            )
        return principal

    AUTH_DEPENDENCIES.add(check)
    return check


def security_openapi(app: FastAPI) -> None:
    """Declare ``X-API-Key`` and ``Authorization: Bearer`` in the OpenAPI schema for each route
    that authenticates through ``requiring``, as FastAPI does for ``Security`` dependencies."""
    default_openapi = app.openapi
    schemes = {
        name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for name, scheme in ((_api_key_header.scheme_name, _api_key_header), (_bearer.scheme_name, _bearer))
    }
    requirement: list[dict[str, list[str]]] = [{name: []} for name in schemes]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default_openapi()
        secured = False
        # Route contexts carry the paths with their router prefixes, as the schema has them.
        for route in iter_route_contexts(app.routes):
            original = route.original_route
            if not isinstance(original, APIRoute) or not route.include_in_schema:
                continue
            if not any(d.call in AUTH_DEPENDENCIES for d in original.dependant.dependencies):
                continue
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    operation.setdefault("security", []).extend(requirement)
                    secured = True
        if secured:
            schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(schemes)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


PoolDep = Annotated[Pool, Depends(get_pool)]
OpenPoolDep = Annotated[Pool | None, Depends(get_open_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RedisDep = Annotated[redis.Redis | None, Depends(get_redis)]
HeadsDep = Annotated[frozenset[str], Depends(get_migration_heads)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CipherDep = Annotated[PayloadCipher, Depends(get_cipher)]
# The dependencies themselves, for api/fast_paths.py, which calls them as the routes' Reader/Writer.
require_read = requiring(READ)
require_write = requiring(WRITE)
Reader = Annotated[Principal, Depends(require_read)]
Writer = Annotated[Principal, Depends(require_write)]
