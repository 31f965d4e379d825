"""The API's gauge refresh loop ends on its stop event, even when a refresh swallowed a cancel.

The refresh itself is replaced here (no I/O): what is under test is the loop's control flow.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as redis

import core.stats
from core.metrics import Metrics
from core.stats import refresh_forever


async def test_the_loop_ends_when_a_refresh_swallowed_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refreshing = asyncio.Event()
    refreshes = 0

    async def refresh_that_swallows_a_cancel(*_: Any) -> None:
        # What redis-py does when a cancellation lands inside a command (redis/redis-py#2551).
        nonlocal refreshes
        refreshes += 1
        refreshing.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise redis.ConnectionError("Connection closed by server.") from None

    monkeypatch.setattr(core.stats, "refresh_stats", refresh_that_swallows_a_cancel)
    stop = asyncio.Event()
    task = asyncio.create_task(refresh_forever(Metrics(), None, None, 0.01, stop))  # type: ignore[arg-type]
    await refreshing.wait()

    stop.set()
    task.cancel()
    await asyncio.wait_for(task, timeout=2)  # the swallowed cancel ends the refresh, not the task

    assert not task.cancelled() and refreshes == 1


async def test_the_loop_refreshes_every_interval_until_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    refreshes = 0

    async def refresh(*_: Any) -> None:
        nonlocal refreshes
        refreshes += 1

    monkeypatch.setattr(core.stats, "refresh_stats", refresh)
    stop = asyncio.Event()
    task = asyncio.create_task(refresh_forever(Metrics(), None, None, 0.01, stop))  # type: ignore[arg-type]
    while refreshes < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=2)  # no cancel needed: the wait on the event ends it
