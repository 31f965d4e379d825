"""Chaos 6: two pollers whose clocks are off by +2 and -2 minutes; no early and no double fire.

The clock is injected (``Poller(clock=...)``): a poller's own clock only plans its wake-ups, while
what is due is decided by the database's ``now()`` and each next fire is computed from the
occurrence's scheduled time. A poller running ahead would otherwise fire early, and one running
behind would fire an occurrence the other one already sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from core.db import create_pool
from core.settings import Settings
from poller.worker import Poller
from tests.chaos.harness import ChaosCluster

pytestmark = pytest.mark.chaos

REMINDERS = 4_000
SKEWS = (timedelta(minutes=2), timedelta(minutes=-2))


def skewed_clock(skew: timedelta) -> Callable[[], datetime]:
    """A wall clock off by ``skew``."""
    return lambda: datetime.now(UTC) + skew


@pytest.mark.timeout(90)
async def test_skewed_pollers_fire_nothing_early_or_twice(chaos: ChaosCluster) -> None:
    settings = Settings(
        database_url=chaos.database_url,
        redis_url=chaos.redis_url,
        payload_keys=chaos.payload_key,
        poll_interval=0.2,
        sweep_after=1.0,
        ack_timeout=600,
        log_level="WARNING",
        log_format="json",
    )
    now = datetime.now(UTC)
    seed = await chaos.seed(REMINDERS, now + timedelta(seconds=2), now + timedelta(seconds=12), kind="mixed")
    pools = [await create_pool(settings, application_name=f"skewed-{i}") for i in range(2)]
    clients = [redis.from_url(chaos.redis_url) for _ in range(2)]
    pollers = [
        Poller(settings, pool, client, clock=skewed_clock(skew))
        for pool, client, skew in zip(pools, clients, SKEWS, strict=True)
    ]
    try:
        for poller in pollers:
            poller.start()
        drained = await chaos.wait_delivered(seed, timeout=25)
    finally:
        for poller in pollers:
            await poller.stop()
        for pool in pools:
            await pool.close()
        for client in clients:
            await client.aclose()
    fired = [p.fired for p in pollers]
    verdict = await chaos.verdict("clock_skew", seed, skews_s=[s.total_seconds() for s in SKEWS], fired=fired)
    assert drained is not None, f"not everything was delivered: {verdict.line()}"
    assert not verdict.problems(), f"{verdict.problems()}: {verdict.line()}"
    assert all(n > 0 for n in fired), f"both skewed pollers should have fired: {verdict.line()}"
