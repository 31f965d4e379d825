"""Liveness and readiness probes, and the Prometheus metrics; no credentials, like any ops endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.deps import HeadsDep, MetricsDep, OpenPoolDep, RedisDep, SettingsDep
from api.errors import RETRY_AFTER_SECONDS
from api.openapi import RETRY_AFTER
from core.metrics import CONTENT_TYPE
from core.readiness import check_readiness, not_ready_body

router = APIRouter(tags=["health"])


class Ready(BaseModel):
    """Every check passed."""

    status: str = "ready"


class NotReady(BaseModel):
    """The checks that failed (``database``, ``redis``, ``migrations``), each with its reason."""

    detail: str
    checks: dict[str, str]


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Ready,
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": NotReady,
            "description": "Not ready",
            "headers": RETRY_AFTER,
        }
    },
)
async def readyz(
    pool: OpenPoolDep, client: RedisDep, heads: HeadsDep, settings: SettingsDep
) -> Ready | JSONResponse:
    """The database and Redis answer and the schema is at the migrations' head (503 naming what is not)."""
    problems = await check_readiness(pool, client, heads, settings.readiness_timeout)
    if problems:
        return JSONResponse(
            not_ready_body(problems),
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    return Ready()


# Out of the OpenAPI schema: Prometheus text, for scrapers rather than API clients.
@router.get("/metrics", include_in_schema=False)
async def metrics(metrics: MetricsDep) -> Response:
    """Every metric of this process, in the Prometheus text format."""
    return Response(metrics.render(), media_type=CONTENT_TYPE)
