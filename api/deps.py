"""FastAPI dependencies: the pool, the settings and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from api.auth import KeyRing, Principal
from core.db import Pool

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Your API key")


def get_pool(request: Request) -> Pool:
    """The process's asyncpg pool, opened in the app's lifespan."""
    pool: Pool = request.app.state.pool
    return pool


def get_keyring(request: Request) -> KeyRing:
    """The accepted API keys."""
    keyring: KeyRing = request.app.state.keyring
    return keyring


def current_principal(
    keyring: Annotated[KeyRing, Depends(get_keyring)],
    api_key: Annotated[str | None, Security(_api_key_header)],
) -> Principal:
    """The caller behind ``X-API-Key``, or 401."""
    if not api_key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing X-API-Key header",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    principal = keyring.authenticate(api_key)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="invalid API key",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    return principal


PoolDep = Annotated[Pool, Depends(get_pool)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
