"""Chaos 4: the consumer dies before acking 10 % of events; those are redelivered, then dead.

Real pollers and API, the reference consumer in this process. For the doomed tenth the handler
fails every time (as if the assistant died before acking), so each such event must come back
after the ack timeout with attempt + 1, again after twice that, and after REMINDERS_MAX_ATTEMPTS
go to ``queue:to_assistant:dead``. Every other event is handled once, acked, and never sent again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
import redis.asyncio as redis

from client import Consumer, HandlerResult
from core.redis_keys import DEAD_LETTER_QUEUE
from tests.chaos.harness import API_KEY, ChaosCluster

pytestmark = pytest.mark.chaos

REMINDERS = 200
CONSUMERS = 4
# Well above the consumers' backlog, or healthy events would be redelivered before their ack.
ACK_TIMEOUT_S = 2.0
MAX_ATTEMPTS = 3
JITTER = 0.2
# Late allows the poll tick and the consumers' latency.
SLACK_S = 1.0


class ConsumerDied(RuntimeError):
    """The handler stands in for an assistant that dies before it acks."""


@pytest.mark.timeout(120)
async def test_unacked_events_are_redelivered_then_dead_lettered(chaos: ChaosCluster) -> None:  # noqa: C901 (one scenario)
    await chaos.start_api()
    await chaos.start_pollers(
        2, REMINDERS_ACK_TIMEOUT=str(ACK_TIMEOUT_S), REMINDERS_MAX_ATTEMPTS=str(MAX_ATTEMPTS)
    )
    now = datetime.now(UTC)
    seed = await chaos.seed(REMINDERS, now + timedelta(seconds=1), now + timedelta(seconds=4), "one_time")
    doomed = set(sorted(seed.scheduled)[::10])

    seen: defaultdict[tuple[UUID, int], list[float]] = defaultdict(list)
    # How long first attempts waited in the queue before their handler ran (push ~ triggered_at).
    queued_for: list[float] = []

    async def handler(event: dict[str, Any]) -> HandlerResult:
        reminder_id = UUID(event["payload"]["reminder_id"])
        now = datetime.now(UTC)
        seen[(UUID(event["event_id"]), int(event["attempt"]))].append(now.timestamp())
        if event["attempt"] == 1:
            pushed = datetime.fromisoformat(event["payload"]["triggered_at"].replace("Z", "+00:00"))
            queued_for.append((now - pushed).total_seconds())
        if reminder_id in doomed:
            raise ConsumerDied("died before acking")
        return HandlerResult()

    queue = redis.from_url(chaos.redis_url)
    assert chaos.api_url is not None
    async with httpx.AsyncClient(base_url=chaos.api_url, headers={"X-API-Key": API_KEY}) as http:
        consumers = [
            Consumer(queue, http, handler, f"chaos-assistant-{n}", block_timeout=0.2)
            for n in range(CONSUMERS)
        ]

        async def consume(consumer: Consumer, stop: asyncio.Event) -> None:
            while not stop.is_set():
                await consumer.process_one()

        stop = asyncio.Event()
        tasks = [asyncio.create_task(consume(c, stop)) for c in consumers]
        # Worst case for the last doomed event: due at +4 s, then 2 + 4 + 8 s of waits (+20 %).
        deadline = time.monotonic() + 45
        try:
            while time.monotonic() < deadline:
                if await queue.llen(DEAD_LETTER_QUEUE) >= len(doomed):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)  # a stray extra attempt would land here
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        try:
            dead = [orjson.loads(raw) for raw in await queue.lrange(DEAD_LETTER_QUEUE, 0, -1)]
        finally:
            await queue.aclose()

    conn = await chaos.connect()
    try:
        states = {
            row["reminder_id"]: row["state"]
            for row in await conn.fetch("SELECT reminder_id, state FROM deliveries")
        }
    finally:
        await conn.close()

    attempts: defaultdict[UUID, list[int]] = defaultdict(list)
    for event_id, attempt in seen:
        attempts[seed.by_event[event_id]].append(attempt)
    duplicated = sum(len(times) - 1 for times in seen.values())
    dead_ids = Counter(UUID(e["payload"]["reminder_id"]) for e in dead)
    lost = [r for r in seed.scheduled if r not in doomed and states.get(r) != "acked"]
    lost += [r for r in doomed if dead_ids[r] != 1 or states.get(r) != "dead"]
    wrong_attempts = [
        r
        for r, tried in attempts.items()
        if sorted(tried) != ([*range(1, MAX_ATTEMPTS + 1)] if r in doomed else [1])
    ]
    # Gaps are measured between handler calls, so an attempt that waited in the queue before its
    # handler ran shortens the gap to the next one by that wait: allow the longest one measured.
    queueing = max(queued_for, default=0.0) + 0.05
    early, late = 0, 0
    margins: list[float] = []
    for event_id, reminder_id in seed.by_event.items():
        if reminder_id not in doomed:
            continue
        for attempt in range(1, MAX_ATTEMPTS):
            first, then = seen.get((event_id, attempt)), seen.get((event_id, attempt + 1))
            if not first or not then:
                continue
            wait = ACK_TIMEOUT_S * 2 ** (attempt - 1)
            gap = then[0] - first[0]
            margins.append(gap - wait)
            early += gap < wait - queueing
            late += gap > wait * (1 + JITTER) + SLACK_S
    verdict = {
        "scenario": "consumer_dies",
        "expected": len(seed.scheduled),
        "doomed": len(doomed),
        "lost": len(lost),
        "duplicated": duplicated,
        "wrong_attempts": len(wrong_attempts),
        "early": early,
        "late": late,
        "dead_lettered": sum(dead_ids.values()),
        "dead_attempts": sorted({int(e["attempt"]) for e in dead}),
        "min_gap_margin_s": round(min(margins), 3) if margins else None,
        "max_queueing_s": round(queueing, 3),
    }
    line = orjson.dumps(verdict).decode()
    sys.stdout.write(f"CHAOS VERDICT {line}\n")
    problems = {
        k: verdict[k] for k in ("lost", "duplicated", "wrong_attempts", "early", "late") if verdict[k]
    }
    assert not problems, line
    assert verdict["dead_attempts"] == [MAX_ATTEMPTS], line
