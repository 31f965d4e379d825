"""Chaos 1: pollers SIGKILLed at random while 20,000 reminders fire; nothing lost, doubled or late.

A poller killed between its claim commit and its push leaves pending deliveries; another poller's
sweep pushes them once they are REMINDERS_SWEEP_AFTER (1 s) old, so even those stay within 5 s.

That window lasts a few milliseconds per batch, so kills at random moments almost never land in
it. Every other kill therefore first holds Redis writes for a moment (CLIENT PAUSE WRITE): every
poller that has just committed a claim is then stuck in its push, and the victim dies there. The
verdict's ``swept`` counts the deliveries confirmed by a sweep, proving the window was exercised.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.chaos.harness import ChaosCluster

pytestmark = pytest.mark.chaos

REMINDERS = 20_000
POLLERS = 4
FIRST_DUE = timedelta(seconds=2)
LAST_DUE = timedelta(seconds=30)
KILL_EVERY_S = 2.0
# Long enough for every running poller to reach its (held) push; short enough to stay on time.
PAUSE_BEFORE_KILL_S = 0.2
DRAIN_TIMEOUT_S = 30.0


@pytest.mark.timeout(150)
async def test_kill_pollers(chaos: ChaosCluster) -> None:
    await chaos.start_pollers(POLLERS)
    now = datetime.now(UTC)
    seed = await chaos.seed(REMINDERS, now + FIRST_DUE, now + LAST_DUE, kind="mixed")

    # A logged seed makes a failing kill sequence reproducible (as far as timing allows).
    rng_seed = time.time_ns() % 1_000_000
    rng = random.Random(rng_seed)
    kills: list[str] = []
    next_kill = time.monotonic() + KILL_EVERY_S
    while datetime.now(UTC) < seed.last_due:
        # Sleep to a fixed grid, so the restarts' own cost does not stretch the interval.
        await asyncio.sleep(max(0.0, next_kill - time.monotonic()))
        next_kill += KILL_EVERY_S
        victim = rng.randrange(POLLERS)
        mid_push = len(kills) % 2 == 1
        if mid_push:
            # The pause's own timeout is a safety net; it is lifted right after the kill.
            await chaos.pause_redis_writes(PAUSE_BEFORE_KILL_S + 2)
            await asyncio.sleep(PAUSE_BEFORE_KILL_S)
        try:
            await chaos.kill_poller(victim, signal.SIGKILL)
        finally:
            if mid_push:
                await chaos.resume_redis_writes()
        chaos.restart_poller(victim)
        kills.append(f"{victim}{'/mid-push' if mid_push else ''}")

    drained = await chaos.wait_delivered(seed, timeout=DRAIN_TIMEOUT_S)
    verdict = await chaos.verdict(
        "kill_pollers",
        seed,
        drained_after_last_due_s=drained,
        kills=len(kills),
        victims=kills,
        rng_seed=rng_seed,
    )
    assert drained is not None, f"not delivered {DRAIN_TIMEOUT_S}s after the last due: {verdict.line()}"
    assert not verdict.problems(), f"{verdict.problems()}: {verdict.line()}"
    assert verdict.details["swept"] > 0, f"no kill landed between commit and push: {verdict.line()}"
