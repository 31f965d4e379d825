"""FastAPI dependencies: the pool, Redis, metrics, the calling principal, and the scope each route needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import redis.asyncio as redis
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.auth import READ, WRITE, KeyRing, Principal, authenticate_key
from api.live_cap import LiveCounts
from api.tokens import InvalidToken, TokenVerifier
from core.crypto import PayloadCipher
from core.db import Pool
from core.metrics import Metrics
from core.settings import Settings

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")
_bearer = HTTPBearer(auto_error=False, description="A JWT signed by your identity provider")
CHALLENGE = {"WWW-Authenticate": 'ApiKey, Bearer realm="reminders"'}


# The getters are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency
# in its thread pool, which costs a thread hand-off per dependency per request for one getattr.
async def get_pool(request: Request) -> Pool:
    """The process's asyncpg pool, opened in the app's lifespan."""
    pool: Pool = request.app.state.pool
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


async def get_live_counts(request: Request) -> LiveCounts:
    """The process's recent live-reminder counts (the soft cap), made with the app."""
    counts: LiveCounts = request.app.state.live_counts
    return counts


async def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=CHALLENGE)


async def current_principal(
    request: Request,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller behind ``X-API-Key`` or ``Authorization: Bearer``, or 401."""
    # Read from app.state here rather than through three more dependencies: every request passes
    # this way, and FastAPI's per-dependency overhead is a measurable part of a cheap request.
    state = request.app.state
    pool: Pool = state.pool
    keyring: KeyRing = state.keyring
    verifier: TokenVerifier = state.tokens
    if api_key:
        principal = await authenticate_key(pool, keyring, api_key)
        if principal is None:
            raise _unauthorized("invalid API key")
        return principal
    if bearer is not None and bearer.credentials:
        try:
            return verifier.verify(bearer.credentials)
        except InvalidToken as exc:
            # The reason (expired, wrong audience...) helps the caller and reveals nothing secret.
            raise _unauthorized(f"invalid bearer token: {exc}") from None
    raise _unauthorized("missing credentials: send X-API-Key or Authorization: Bearer")


def requiring(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets the caller through only with ``scope`` (403 otherwise)."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_scope(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"this credential lacks the scope {scope!r}"
            )
        return principal

    return check


PoolDep = Annotated[Pool, Depends(get_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RedisDep = Annotated[redis.Redis | None, Depends(get_redis)]
HeadsDep = Annotated[frozenset[str], Depends(get_migration_heads)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LiveCountsDep = Annotated[LiveCounts, Depends(get_live_counts)]
CipherDep = Annotated[PayloadCipher, Depends(get_cipher)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Reader = Annotated[Principal, Depends(requiring(READ))]
Writer = Annotated[Principal, Depends(requiring(WRITE))]
