"""Dispatch: claim due reminders batch by batch, their events pushed inside each claim.

One fire's path: ``claim_batch`` (claim, plan, push through the Sender, record as sent), then here
its metrics and its log line. A full batch means a backlog, which several lanes drain at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from core.crypto import PayloadCipher
from core.db import Pool
from core.metrics import Metrics
from poller.claim import PushFirst, claim_batch
from poller.heartbeat import Heartbeat
from poller.sender import Sender
from poller.set_aside import SetAside

log = structlog.get_logger("poller")


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """The slice of the settings the dispatch reads."""

    batch_size: int
    claim_lanes: int
    ack_timeout: float


class Dispatcher:
    """Fires what is due: one batch, then, while batches come back full, several lanes."""

    def __init__(
        self,
        settings: DispatchSettings,
        pool: Pool,
        cipher: PayloadCipher,
        sender: Sender,
        heartbeat: Heartbeat,
        set_aside: SetAside,
        metrics: Metrics,
        stopping: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._cipher = cipher
        self._sender = sender
        self._heartbeat = heartbeat
        self._set_aside = set_aside
        self._metrics = metrics
        self._stopping = stopping
        self._push_first = PushFirst(sender.push_claimed, settings.ack_timeout)

    async def run_once(self, now: datetime | None = None) -> int:
        """Fire what is due (against ``now``, tests only; else the database clock); how many were recorded."""
        recorded, full = await self._batch(now)
        if not full or self._stopping():
            return recorded
        # A backlog: claim in several lanes at once (SKIP LOCKED keeps them apart), so one lane's
        # Python work (decrypt, next fire, encode) overlaps another's wait on Postgres or Redis.
        async with asyncio.TaskGroup() as lanes:
            tasks = [lanes.create_task(self._lane(now)) for _ in range(self._settings.claim_lanes)]
        return recorded + sum(task.result() for task in tasks)

    async def _lane(self, now: datetime | None) -> int:
        recorded = 0
        while not self._stopping():
            fired, full = await self._batch(now)
            recorded += fired
            if not full:
                break
        return recorded

    async def _batch(self, now: datetime | None) -> tuple[int, bool]:
        """One batch: claim, push, record as sent. How many were recorded, and whether it was full."""
        started = time.monotonic()
        result = await claim_batch(
            self._pool, self._settings.batch_size, now, cipher=self._cipher, push_first=self._push_first
        )
        self._metrics.batch_size.observe(result.claimed)
        for reminder_id, reason in result.quarantined:
            self._set_aside.counted([reminder_id], reason)
        if result.occurrences and result.pushed_at is not None:
            # Recorded as sent in the claim itself; unpushed ones wait, pending, for the sweep.
            self._sender.claimed(result.occurrences, result.pushed_at)
            log.debug("batch", claimed=result.claimed, seconds=round(time.monotonic() - started, 4))
        self._metrics.poll_duration.observe(time.monotonic() - started)
        # Inside the loop: a long backlog drain must not look like a dead poller.
        await self._heartbeat.run_once()
        if result.skipped:
            log.info("skip", occurrences=result.skipped, reason="misfire")
        return len(result.occurrences), result.claimed >= self._settings.batch_size
