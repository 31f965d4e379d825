"""Chaos 2: Redis stopped for 20 s just as 5,000 reminders start to fire; all arrive once it is back.

While Redis is away the pollers keep claiming (Postgres decides what fires) and leave pending
deliveries; pushes back off and retry; when Redis returns on the same port the sweep pushes the
backlog. Late events are expected here (they waited for Redis), so lateness is reported, not
asserted; everything must be in the queue within 30 s of Redis' return, once, and none early.

Redis is stopped gracefully (SIGTERM, which is SHUTDOWN: the AOF is fsynced before exit), not
killed. With ``appendfsync everysec`` a hard kill may drop the last second of writes whose replies
the pollers already received; they would then mark those deliveries sent and the events would be
gone. That is a durability setting of Redis, not a delivery bug, and not what this test measures.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.chaos.harness import ChaosCluster

pytestmark = pytest.mark.chaos

REMINDERS = 5_000
POLLERS = 2
FIRST_DUE = timedelta(seconds=3)
LAST_DUE = timedelta(seconds=13)
OUTAGE_S = 20.0
DRAIN_TIMEOUT_S = 30.0


@pytest.mark.timeout(150)
async def test_redis_outage(chaos: ChaosCluster) -> None:
    await chaos.start_pollers(POLLERS)
    now = datetime.now(UTC)
    seed = await chaos.seed(REMINDERS, now + FIRST_DUE, now + LAST_DUE, kind="mixed")

    await asyncio.sleep(max(0.0, (seed.first_due - datetime.now(UTC)).total_seconds()))
    down_at = time.monotonic()
    queued_before = await chaos.queue_length()
    await chaos.stop_redis()
    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
    await chaos.start_redis()
    back_at = time.monotonic()

    drained = await chaos.wait_delivered(seed, timeout=DRAIN_TIMEOUT_S)
    alive = [p.name for p in chaos.pollers if p.alive()]
    verdict = await chaos.verdict(
        "redis_outage",
        seed,
        outage_s=round(back_at - down_at, 1),
        queued_before_outage=queued_before,
        delivered_after_return_s=drained,
        pollers_alive=len(alive),
    )
    assert drained is not None, f"not delivered {DRAIN_TIMEOUT_S}s after Redis returned: {verdict.line()}"
    assert len(alive) == POLLERS, f"a poller died during the outage: {verdict.line()}"
    assert not verdict.problems(late_allowed=True), f"{verdict.problems(late_allowed=True)}: {verdict.line()}"
