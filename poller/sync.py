"""The REST sync tick: read the upcoming schedule from the API, with retries and backoff.

Firing never depends on it (the database claim alone decides); it plans precise wake-ups for the
soonest reminders and reports what the scheduler expects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import structlog

log = structlog.get_logger("poller.sync")


def backoff_delay(attempt: int, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff for retry number ``attempt`` (0-based), capped."""
    return float(min(cap, base * 2**attempt))


async def fetch_scheduled(
    client: httpx.AsyncClient,
    api_key: str,
    *,
    max_retries: int,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    limit: int = 100,
) -> list[dict[str, Any]] | None:
    """The first page of ``GET /reminders/scheduled``, or None after ``max_retries`` failures."""
    for attempt in range(max_retries + 1):
        try:
            response = await client.get(
                "/reminders/scheduled", params={"limit": limit}, headers={"X-API-Key": api_key}
            )
            response.raise_for_status()
            items: list[dict[str, Any]] = response.json()["items"]
            return items
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            delay = backoff_delay(attempt)
            log.warning(
                "sync_retry" if attempt < max_retries else "sync_failed",
                attempt=attempt + 1,
                error=repr(exc),
                retry_in=delay if attempt < max_retries else None,
            )
            if attempt < max_retries:
                await sleep(delay)
    return None


def upcoming_times(items: list[dict[str, Any]], horizon: datetime) -> list[datetime]:
    """Distinct fire times in ``items`` up to ``horizon``, soonest first."""
    times = {
        datetime.fromisoformat(item["next_run_at"].replace("Z", "+00:00"))
        for item in items
        if item.get("next_run_at")
    }
    return sorted(t for t in times if t <= horizon)
