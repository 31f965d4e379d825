"""Sending events: pushes through the poller's Redis backoff, marking pushed deliveries sent, and
counting and logging what went out (fires, redeliveries, dead letters)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

import structlog

from core.db import Connection, Pool
from core.events import Occurrence
from core.metrics import Metrics
from core.queries import queries
from core.readiness import REDIS_ERRORS
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE
from poller.backoff import RedisBackoff
from poller.claim import Pushed
from poller.firelog import FireLog
from poller.push import EventPusher, PushReport

log = structlog.get_logger("poller")


class Sender:
    """One poller's way out to Redis; ``pusher`` may be replaced (tests gate it)."""

    def __init__(
        self,
        pusher: EventPusher,
        backoff: RedisBackoff,
        metrics: Metrics,
        fire_log: FireLog,
        ack_timeout: float,
        clock: Callable[[], datetime],
    ) -> None:
        self.pusher = pusher
        self.backoff = backoff
        self._metrics = metrics
        self._fire_log = fire_log
        self._ack_timeout = ack_timeout
        self._clock = clock
        # The database clock minus ours, as of the last claim: fire lag is measured on the database
        # clock (the one that decides what is due), so a skewed poller does not skew the histogram.
        self._db_offset = timedelta(0)
        self.fired = 0

    async def push(self, occurrences: list[Occurrence], queue: str = EVENT_QUEUE) -> PushReport | None:
        """Push to ``queue``; on a Redis failure log it, back off, and return None."""
        if self.backoff.waiting:
            return None  # the sweep pushes these once Redis is back
        try:
            report = await self.pusher.push_reporting(occurrences, queue)
        except REDIS_ERRORS as exc:
            delay = self.backoff.failed()
            log.error(
                "push_failed",
                error=repr(exc),
                queue=queue,
                events=len(occurrences),
                retry_in=delay,
                event_ids=[str(o.event_id) for o in occurrences[:10]],
            )
            return None
        self.backoff.succeeded()
        return report

    async def push_claimed(self, occurrences: list[Occurrence]) -> Pushed | None:
        """Push a claim's events (PushFirst): when Redis confirmed them, on the database clock."""
        self._db_offset = occurrences[0].triggered_at - self._clock()
        report = await self.push(occurrences)
        if report is None:
            return None
        return Pushed(self._clock() + self._db_offset, report.earlier)

    def claimed(self, occurrences: list[Occurrence], pushed_at: datetime) -> None:
        """Count and log a claim's events, recorded as sent by the claim itself."""
        self._went_out(occurrences, None, pushed_at)

    async def push_and_mark(self, conn: Connection, occurrences: list[Occurrence]) -> set[UUID] | None:
        """Push deliveries ``conn``'s transaction holds locked and mark them sent in it: a cancel or
        snooze stops them on the same rows, so it waits for this push or none happens after it.
        The ids marked, or None when Redis did not confirm (they stay pending, for the sweep)."""
        if await self.push(occurrences) is None:
            return None
        marked = await conn.fetch(
            queries["mark_sent"],
            [o.event_id for o in occurrences],
            [o.ack_required for o in occurrences],
            self._ack_timeout,
        )
        return {r["event_id"] for r in marked}

    def sent(self, occurrences: list[Occurrence], marked: set[UUID]) -> None:
        """Count and log a committed push of deliveries (redeliveries, strays)."""
        self._went_out(occurrences, marked, self._clock() + self._db_offset)

    def _went_out(self, occurrences: list[Occurrence], marked: set[UUID] | None, pushed_at: datetime) -> None:
        self.fired += len(occurrences)
        self._count_sent(occurrences, marked, pushed_at)
        self._fire_log.write(occurrences)

    async def dead_letter(self, pool: Pool, occurrences: list[Occurrence]) -> None:
        """Copy deliveries out of attempts to the dead-letter list and mark them dead."""
        if await self.push(occurrences, DEAD_LETTER_QUEUE) is None:
            return
        marked = await pool.fetch(queries["mark_dead_lettered"], [o.event_id for o in occurrences])
        if marked:
            self._metrics.dead_letters.inc(len(marked))
        for o in occurrences:
            log.warning(
                "dead_letter",
                reminder_id=str(o.reminder_id),
                event_id=str(o.event_id),
                assistant_id=str(o.assistant_id),
                attempts=o.attempt,
            )

    def _count_sent(
        self, occurrences: list[Occurrence], marked: set[UUID] | None, pushed_at: datetime
    ) -> None:
        """Fires (first attempts) and redeliveries that this push moved from pending to sent.

        Only the deliveries our mark moved count (None: all of them, recorded as sent by their
        claim), so an event pushed again (a sweep after a lost reply, two pollers sweeping the
        same stray) is counted once.
        """
        fires: Counter[str] = Counter()
        redelivered = 0
        for o in occurrences:
            if marked is not None and o.event_id not in marked:
                continue
            if o.attempt == 1:
                fires[o.reminder_type] += 1
                self._metrics.fire_lag.observe((pushed_at - o.scheduled_for).total_seconds())
            else:
                redelivered += 1
        for reminder_type, count in fires.items():
            self._metrics.fires.labels(reminder_type).inc(count)
        if redelivered:
            self._metrics.redeliveries.inc(redelivered)
