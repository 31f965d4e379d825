"""One poller process: APScheduler drives its ticks; Postgres decides what fires."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import redis.asyncio as redis
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from redis.exceptions import RedisError

from core.crypto import PayloadCipher
from core.db import Pool
from core.events import Occurrence, format_time
from core.queries import queries
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE
from core.settings import Settings
from poller.claim import claim_batch
from poller.push import EventPusher
from poller.sweep import claim_redeliveries, stale_dead, stale_pending
from poller.sync import backoff_delay, fetch_scheduled, upcoming_times

log = structlog.get_logger("poller")

# Any Redis failure (down, loading, out of memory...) leaves the events in the outbox for later.
REDIS_ERRORS = (RedisError, OSError)
DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class Poller:
    """Claims due reminders in batches, records them, pushes their events, and re-pushes strays."""

    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        redis_client: redis.Redis,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cipher: PayloadCipher | None = None,
    ) -> None:
        self.settings = settings
        # Decrypts payloads; built from settings unless given (no keys: a clear error at start).
        self.cipher = cipher or PayloadCipher.from_settings(settings)
        # Only plans wake-ups: what is due is always decided by the database clock.
        self.clock = clock
        self.pool = pool
        self.pusher = EventPusher(redis_client, settings.event_marker_ttl)
        self.http = http
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._poll_lock = asyncio.Lock()
        self._stopping = False
        self._redis_failures = 0
        self._redis_retry_at = 0.0
        self.fired = 0

    # -- the poll tick ------------------------------------------------------------------------

    async def poll(self, now: datetime | None = None) -> int:
        """One tick: fire what is due, redeliver what went unacknowledged, re-push strays.

        Returns the occurrences recorded. Full batches poll again at once, so a backlog drains
        at full speed; ``now`` overrides the database clock (tests only).
        """
        async with self._poll_lock:
            recorded = 0
            try:
                recorded = await self._drain(now)
                if not self._stopping:
                    await self._redeliver()
                    await self._sweep()
                    await self._plan_wakeup()
            except DATABASE_ERRORS as exc:
                log.error("poll_failed", error=repr(exc))
            except Exception as exc:  # a poller must outlive any one bad tick
                log.exception("poll_failed", error=repr(exc))
            return recorded

    async def _drain(self, now: datetime | None) -> int:
        recorded = 0
        while not self._stopping:
            started = time.monotonic()
            result = await claim_batch(self.pool, self.settings.batch_size, now, cipher=self.cipher)
            recorded += len(result.occurrences)
            if result.occurrences:
                await self._deliver(result.occurrences)
                log.debug("batch", claimed=result.claimed, seconds=round(time.monotonic() - started, 4))
            if result.skipped:
                log.info("skip", occurrences=result.skipped, reason="misfire")
            if result.claimed < self.settings.batch_size:
                break
        return recorded

    def _redis_backing_off(self) -> bool:
        return time.monotonic() < self._redis_retry_at

    async def _push(self, occurrences: list[Occurrence], queue: str) -> bool:
        """Push to ``queue``; on a Redis failure log it, back off, and return False."""
        if self._redis_backing_off():
            return False  # the sweep pushes these once Redis is back
        try:
            await self.pusher.push(occurrences, queue)
        except REDIS_ERRORS as exc:
            self._redis_failures += 1
            delay = backoff_delay(self._redis_failures - 1, cap=self.settings.redis_retry_max_delay)
            self._redis_retry_at = time.monotonic() + delay
            log.error(
                "push_failed",
                error=repr(exc),
                queue=queue,
                events=len(occurrences),
                retry_in=delay,
                event_ids=[str(o.event_id) for o in occurrences[:10]],
            )
            return False
        if self._redis_failures:
            log.info("redis_recovered", after_failures=self._redis_failures)
        self._redis_failures = 0
        return True

    async def _deliver(self, occurrences: list[Occurrence]) -> None:
        if not await self._push(occurrences, EVENT_QUEUE):
            return
        await self.pool.execute(
            queries["mark_sent"], [o.event_id for o in occurrences], self.settings.ack_timeout
        )
        self.fired += len(occurrences)
        for o in occurrences:
            log.info(
                "fire" if o.attempt == 1 else "retry",
                reminder_id=str(o.reminder_id),
                event_id=str(o.event_id),
                assistant_id=str(o.assistant_id),
                attempt=o.attempt,
                scheduled_for=format_time(o.scheduled_for),
                late=o.late,
                lag_ms=round((o.triggered_at - o.scheduled_for).total_seconds() * 1000, 1),
            )

    async def _dead_letter(self, occurrences: list[Occurrence]) -> None:
        if not await self._push(occurrences, DEAD_LETTER_QUEUE):
            return
        await self.pool.execute(queries["mark_dead_lettered"], [o.event_id for o in occurrences])
        for o in occurrences:
            log.warning(
                "dead_letter",
                reminder_id=str(o.reminder_id),
                event_id=str(o.event_id),
                assistant_id=str(o.assistant_id),
                attempts=o.attempt,
            )

    async def _redeliver(self) -> None:
        """Push again the events whose ack is overdue; dead-letter those out of attempts."""
        batch_size = self.settings.batch_size
        while not self._stopping and not self._redis_backing_off():
            due = await claim_redeliveries(self.pool, self.cipher, batch_size, self.settings.max_attempts)
            if due.retry:
                await self._deliver(due.retry)
            if due.dead:
                await self._dead_letter(due.dead)
            if len(due.retry) + len(due.dead) < batch_size:
                break

    async def _sweep(self) -> None:
        """Re-push what was recorded but never confirmed by Redis (a crash, an outage)."""
        batch_size, after = self.settings.batch_size, self.settings.sweep_after
        while not self._stopping and not self._redis_backing_off():
            strays = await stale_pending(self.pool, self.cipher, after, batch_size)
            if strays:
                log.warning("retry_pending", events=len(strays))
                await self._deliver(strays)
            if len(strays) < batch_size:
                break
        if not self._stopping and not self._redis_backing_off():
            dead = await stale_dead(self.pool, self.cipher, after, batch_size)
            if dead:
                await self._dead_letter(dead)

    async def _plan_wakeup(self) -> None:
        """Schedule a one-shot poll at the nearest upcoming fire if it comes before the next tick."""
        row = await self.pool.fetchrow(queries["next_due"])
        if row is None or row["next_run_at"] is None:
            return
        # Plan on our clock by the database's distance to the fire, so clock skew does not matter.
        delay = (row["next_run_at"] - row["db_now"]).total_seconds()
        if 0 < delay < self.settings.poll_interval:
            self._wake_at(self.clock() + timedelta(seconds=delay), "wakeup")

    def _wake_at(self, when: datetime, job_id: str) -> None:
        self.scheduler.add_job(
            self.poll,
            DateTrigger(run_date=when),
            id=job_id,
            replace_existing=True,
            misfire_grace_time=None,
        )

    # -- the REST sync tick -------------------------------------------------------------------

    async def update_jobs_from_rest(self) -> None:
        """Read the upcoming schedule from the REST API and plan wake-ups for what is near."""
        key = self._api_key()
        if self.http is None or key is None:
            return
        items = await fetch_scheduled(self.http, key, max_retries=self.settings.sync_max_retries)
        if items is None:
            return
        now = self.clock()
        times = upcoming_times(items, now + timedelta(seconds=self.settings.sync_interval))
        for when in times[:20]:
            if when > now:
                self._wake_at(when, f"wake-{when.isoformat()}")
        log.info("sync_ok", upcoming=len(items), wakeups=len(times[:20]))

    def _api_key(self) -> str | None:
        if self.settings.bootstrap_api_key is not None:
            return self.settings.bootstrap_api_key.get_secret_value()
        first = self.settings.api_keys.split(",")[0].split("@")[0].strip()
        return first or None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the ticks on the running event loop."""
        self.scheduler.add_job(
            self.poll,
            IntervalTrigger(seconds=self.settings.poll_interval),
            id="poll",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.add_job(
            self.update_jobs_from_rest,
            IntervalTrigger(seconds=self.settings.sync_interval),
            id="sync",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop the ticks, letting a batch in flight finish: claimed, pushed and marked sent.

        APScheduler's own shutdown cancels running jobs, which could cut a batch between its
        commit and its push (the sweep would repair it, but only seconds later); so no new batch
        starts once stopping, and the scheduler shuts down only after the current one is done.
        """
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.pause()
        async with self._poll_lock:
            pass
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
