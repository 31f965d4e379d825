"""Readiness, shared by the API and the pollers: the database and Redis answer, the schema is at head.

``/healthz`` only says the process runs; ``/readyz`` says it can do its work. Each failing check is
named (``database``, ``redis``, ``migrations``) with a short reason; the full error goes to the log,
not to the unauthenticated answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import redis.asyncio as redis
import structlog
from alembic.script import ScriptDirectory
from redis.exceptions import RedisError

from core.db import DATABASE_ERRORS, Pool
from core.migrate import PROJECT_ROOT
from core.queries import queries

log = structlog.get_logger("readiness")

REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def migration_heads() -> frozenset[str]:
    """The head revision(s) of the migration scripts; reads files, so call it once at startup."""
    return frozenset(ScriptDirectory(str(PROJECT_ROOT / "migrations")).get_heads())


async def _check_database(pool: Pool, heads: frozenset[str], timeout: float) -> dict[str, str]:
    try:
        # The whole check is bounded (acquiring a connection included), not only the query.
        rows = await asyncio.wait_for(pool.fetch(queries["schema_versions"]), timeout)
    except asyncpg.UndefinedTableError:
        return {"migrations": "no alembic_version table: the migrations have not run"}
    except DATABASE_ERRORS as exc:
        log.warning("not_ready", check="database", error=repr(exc))
        return {"database": f"unreachable ({type(exc).__name__})"}
    applied = frozenset(row["version_num"] for row in rows)
    if applied != heads:
        at, head = ", ".join(sorted(applied)) or "nothing", ", ".join(sorted(heads))
        return {"migrations": f"at {at}, head is {head}"}
    return {}


async def _check_redis(client: redis.Redis | None, timeout: float) -> dict[str, str]:
    if client is None:
        return {"redis": "no client (the process has not finished starting)"}
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except REDIS_ERRORS as exc:
        log.warning("not_ready", check="redis", error=repr(exc))
        return {"redis": f"unreachable ({type(exc).__name__})"}
    return {}


async def check_readiness(
    pool: Pool, client: redis.Redis | None, heads: frozenset[str], timeout: float = 2.0
) -> dict[str, str]:
    """What is not ready, by check name with the reason; empty when everything is."""
    database, cache = await asyncio.gather(
        _check_database(pool, heads, timeout), _check_redis(client, timeout)
    )
    return {**database, **cache}


def not_ready_body(problems: dict[str, str]) -> dict[str, Any]:
    """The 503 body both /readyz endpoints answer: one line naming the checks, then each reason."""
    return {"detail": "unavailable: " + ", ".join(sorted(problems)), "checks": problems}
