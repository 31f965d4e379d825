"""Chaos 1: pollers SIGKILLed at random while 20,000 reminders fire; nothing lost, doubled or late.

A claim pushes its events to Redis before it records their deliveries as sent and commits. A
poller killed between that push and the commit rolls the claim back with its events already in
the queue; the next claim of those rows finds their markers, pushes nothing twice, and records the
deliveries as sent.

That window lasts a few milliseconds per batch, so kills at random moments almost never land in
it. Every third kill therefore first holds writes to the deliveries table for a moment: every
poller that has just pushed a claim's events is then stuck recording them, and the victim dies
there. The verdict's ``reclaimed`` counts the events recorded by a later claim than the one that
pushed them, proving the window was exercised. Every other third kill first holds Redis writes
(CLIENT PAUSE WRITE), so the victim dies inside a push.
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
# Long enough for every running poller to reach its held push or record; short enough to stay on time.
PAUSE_BEFORE_KILL_S = 0.2
# Where a kill lands, in turn: anywhere, inside a push, between a claim's push and its commit.
MOMENTS = ("anywhere", "mid-push", "mid-record")
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
        moment = MOMENTS[len(kills) % len(MOMENTS)]
        if moment == "mid-push":
            # The pause's own timeout is a safety net; it is lifted right after the kill.
            await chaos.pause_redis_writes(PAUSE_BEFORE_KILL_S + 2)
            try:
                await asyncio.sleep(PAUSE_BEFORE_KILL_S)
                await chaos.kill_poller(victim, signal.SIGKILL)
            finally:
                await chaos.resume_redis_writes()
        elif moment == "mid-record":
            async with chaos.deliveries_held():
                await asyncio.sleep(PAUSE_BEFORE_KILL_S)
                await chaos.kill_poller(victim, signal.SIGKILL)
        else:
            await chaos.kill_poller(victim, signal.SIGKILL)
        chaos.restart_poller(victim)
        kills.append(f"{victim}/{moment}")

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
    assert verdict.details["reclaimed"] > 0, f"no kill landed between push and commit: {verdict.line()}"
