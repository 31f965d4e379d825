"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PoolDep

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz")
async def readyz(pool: PoolDep) -> dict[str, str]:
    """The database answers (503 otherwise, via the error handlers)."""
    await pool.fetchval("SELECT 1")
    return {"status": "ready"}
