"""One poller process: APScheduler drives its ticks; Postgres decides what fires."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import redis.asyncio as redis
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.crypto import PayloadCipher
from core.db import DATABASE_ERRORS, Connection, Pool
from core.events import Occurrence
from core.exceptions import PayloadCryptoError
from core.logging import renders_json
from core.metrics import Metrics
from core.queries import queries
from core.readiness import REDIS_ERRORS
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE, POLLER_HEARTBEATS
from core.retention import Pruned, prune
from core.settings import Settings
from core.stats import refresh_stats
from poller.claim import POLLER_ACTOR, Pushed, PushFirst, claim_batch
from poller.firelog import FireLog
from poller.push import EventPusher, PushReport
from poller.sweep import claim_redeliveries, stale_dead, stale_pending
from poller.sync import backoff_delay, fetch_scheduled, upcoming_times
from poller.unreadable import DECODE_ERRORS, quarantine_delivering, quarantine_unreadable_delivering
from poller.wakeup import WakeupListener

log = structlog.get_logger("poller")

# A heartbeat at most this often (seconds); entries older than HEARTBEAT_TTL are trimmed (by any
# poller, every HEARTBEAT_TRIM_EVERY seconds), so pollers long gone do not pile up.
HEARTBEAT_EVERY = 1.0
HEARTBEAT_TTL = 3600
HEARTBEAT_TRIM_EVERY = 60.0
# Something is due yet this poll claimed nothing: another poller (or an API transaction) holds the
# row, or it came due between our claim and next_due. Poll again this soon rather than wait for the
# tick; the holder commits within milliseconds, so this spins a few times at most (doubling while the
# same fire stays stuck, e.g. behind a stalled API transaction, up to the poll interval).
RETRY_DUE_AFTER = 0.005
# Wake-ups may overlap (a wake-up polls while the next one comes due); APScheduler would skip the
# second if only one instance may run, and the poll lock serialises them anyway.
WAKEUP_INSTANCES = 4
# On Redis's clock, so the scores of pollers on different hosts compare without clock skew.
_HEARTBEAT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZADD', KEYS[1], t, ARGV[1])
if ARGV[2] == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - tonumber(ARGV[3]))
end
return 1
"""


def default_poller_id() -> str:
    """``hostname:pid``, the member this process writes to the heartbeat set."""
    return f"{socket.gethostname()}:{os.getpid()}"


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
        metrics: Metrics | None = None,
        poller_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.poller_id = poller_id or default_poller_id()
        # Decrypts payloads; built from settings unless given (no keys: a clear error at start).
        self.cipher = cipher or PayloadCipher.from_settings(settings)
        # Only plans wake-ups: what is due is always decided by the database clock.
        self.clock = clock
        self.pool = pool
        self.redis = redis_client
        self.pusher = EventPusher(redis_client, settings.event_marker_ttl)
        self._push_first = PushFirst(self._push_claimed, settings.ack_timeout)
        self._heartbeat_script = redis_client.register_script(_HEARTBEAT)
        self._last_beat = float("-inf")
        self._last_trim = float("-inf")
        # The database clock minus ours, as of the last claim: fire lag is measured on the database
        # clock (the one that decides what is due), so a skewed poller does not skew the histogram.
        self._db_offset = timedelta(0)
        self.http = http
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._poll_lock = asyncio.Lock()
        self._stopping = False
        self._redis_failures = 0
        self._redis_retry_at = 0.0
        # LISTENs for sooner fires announced by the API; created by start(), closed by stop().
        self.listener: WakeupListener | None = None
        # The due fire the last poll could not claim, and how many polls in a row could not.
        self._retrying_due: datetime | None = None
        self._due_retries = 0
        self.fired = 0
        self.fire_log = FireLog(json_lines=renders_json(settings.log_format), level=settings.log_level)

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
                self.metrics.errors.labels("poller", "database").inc()
                log.error("poll_failed", error=repr(exc))
            except PayloadCryptoError as exc:
                self.metrics.errors.labels("poller", "payload").inc()
                log.error("poll_failed", error=repr(exc))
            except Exception as exc:  # a poller must outlive any one bad tick
                self.metrics.errors.labels("poller", "unexpected").inc()
                log.exception("poll_failed", error=repr(exc))
            return recorded

    async def _drain(self, now: datetime | None) -> int:
        recorded, full = await self._claim_and_deliver(now)
        if not full or self._stopping:
            return recorded
        # A backlog: claim in several lanes at once (SKIP LOCKED keeps them apart), so one lane's
        # Python work (decrypt, next fire, encode) overlaps another's wait on Postgres or Redis.
        async with asyncio.TaskGroup() as lanes:
            tasks = [lanes.create_task(self._drain_lane(now)) for _ in range(self.settings.claim_lanes)]
        return recorded + sum(task.result() for task in tasks)

    async def _drain_lane(self, now: datetime | None) -> int:
        recorded = 0
        while not self._stopping:
            fired, full = await self._claim_and_deliver(now)
            recorded += fired
            if not full:
                break
        return recorded

    async def _claim_and_deliver(self, now: datetime | None) -> tuple[int, bool]:
        """One batch: claim, push, record as sent. How many were recorded, and whether it was full."""
        started = time.monotonic()
        result = await claim_batch(
            self.pool, self.settings.batch_size, now, cipher=self.cipher, push_first=self._push_first
        )
        self.metrics.batch_size.observe(result.claimed)
        for reminder_id, reason in result.quarantined:
            self.metrics.quarantined.labels(reason).inc()
            log.error("quarantine", reminder_id=str(reminder_id), reason=reason)
        if result.occurrences and result.pushed_at is not None:
            # Recorded as sent in the claim itself; unpushed ones wait, pending, for the sweep.
            self.fired += len(result.occurrences)
            self._count_sent(result.occurrences, None, result.pushed_at)
            self.fire_log.write(result.occurrences)
            log.debug("batch", claimed=result.claimed, seconds=round(time.monotonic() - started, 4))
        self.metrics.poll_duration.observe(time.monotonic() - started)
        # Inside the loop: a long backlog drain must not look like a dead poller.
        await self._heartbeat()
        if result.skipped:
            log.info("skip", occurrences=result.skipped, reason="misfire")
        return len(result.occurrences), result.claimed >= self.settings.batch_size

    def _redis_backing_off(self) -> bool:
        return time.monotonic() < self._redis_retry_at

    def _redis_failed(self) -> float:
        """Count a Redis failure and start (or lengthen) the backoff; returns its delay."""
        self.metrics.errors.labels("poller", "redis").inc()
        self._redis_failures += 1
        delay = backoff_delay(self._redis_failures - 1, cap=self.settings.redis_retry_max_delay)
        self._redis_retry_at = time.monotonic() + delay
        return delay

    async def _push(self, occurrences: list[Occurrence], queue: str) -> PushReport | None:
        """Push to ``queue``; on a Redis failure log it, back off, and return None."""
        if self._redis_backing_off():
            return None  # the sweep pushes these once Redis is back
        try:
            report = await self.pusher.push_reporting(occurrences, queue)
        except REDIS_ERRORS as exc:
            delay = self._redis_failed()
            log.error(
                "push_failed",
                error=repr(exc),
                queue=queue,
                events=len(occurrences),
                retry_in=delay,
                event_ids=[str(o.event_id) for o in occurrences[:10]],
            )
            return None
        if self._redis_failures:
            log.info("redis_recovered", after_failures=self._redis_failures)
        self._redis_failures = 0
        return report

    async def _push_claimed(self, occurrences: list[Occurrence]) -> Pushed | None:
        """Push a claim's events (PushFirst): when Redis confirmed them, on the database clock."""
        self._db_offset = occurrences[0].triggered_at - self.clock()
        report = await self._push(occurrences, EVENT_QUEUE)
        if report is None:
            return None
        return Pushed(self.clock() + self._db_offset, report.earlier)

    async def _push_and_mark(self, conn: Connection, occurrences: list[Occurrence]) -> set[UUID] | None:
        """Push deliveries ``conn``'s transaction holds locked and mark them sent in it: a cancel or
        snooze stops them on the same rows, so it waits for this push or none happens after it.
        The ids marked, or None when Redis did not confirm (they stay pending, for the sweep)."""
        if await self._push(occurrences, EVENT_QUEUE) is None:
            return None
        marked = await conn.fetch(
            queries["mark_sent"],
            [o.event_id for o in occurrences],
            [o.ack_required for o in occurrences],
            self.settings.ack_timeout,
        )
        return {r["event_id"] for r in marked}

    def _sent(self, occurrences: list[Occurrence], marked: set[UUID]) -> None:
        """Count and log a committed push of deliveries (redeliveries, strays)."""
        self.fired += len(occurrences)
        self._count_sent(occurrences, marked, self.clock() + self._db_offset)
        self.fire_log.write(occurrences)

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
                self.metrics.fire_lag.observe((pushed_at - o.scheduled_for).total_seconds())
            else:
                redelivered += 1
        for reminder_type, count in fires.items():
            self.metrics.fires.labels(reminder_type).inc(count)
        if redelivered:
            self.metrics.redeliveries.inc(redelivered)

    async def _dead_letter(self, occurrences: list[Occurrence]) -> None:
        if await self._push(occurrences, DEAD_LETTER_QUEUE) is None:
            return
        marked = await self.pool.fetch(queries["mark_dead_lettered"], [o.event_id for o in occurrences])
        if marked:
            self.metrics.dead_letters.inc(len(marked))
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
            marked: set[UUID] | None = None
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    due = await claim_redeliveries(conn, self.cipher, batch_size, self.settings.max_attempts)
                    if due.retry:
                        # Unconfirmed ones commit pending (attempt counted, audited) for the sweep.
                        marked = await self._push_and_mark(conn, due.retry)
            except DECODE_ERRORS as exc:
                if await self._set_aside_unreadable(exc):
                    continue
                raise
            if marked is not None:
                self._sent(due.retry, marked)
            await self._set_aside_undecryptable(due.undecryptable)
            if due.dead:
                await self._dead_letter(due.dead)
            if len(due.retry) + len(due.dead) + len(due.undecryptable) < batch_size:
                break

    async def _sweep(self) -> None:
        """Re-push what was recorded but never confirmed by Redis (a crash, an outage)."""
        batch_size, after = self.settings.batch_size, self.settings.sweep_after
        while not self._stopping and not self._redis_backing_off():
            marked: set[UUID] | None = None
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    strays = await stale_pending(conn, self.cipher, after, batch_size)
                    if strays.occurrences:
                        log.warning("retry_pending", events=len(strays.occurrences))
                        marked = await self._push_and_mark(conn, strays.occurrences)
            except DECODE_ERRORS as exc:
                if await self._set_aside_unreadable(exc):
                    continue
                raise
            if marked is not None:
                self._sent(strays.occurrences, marked)
            await self._set_aside_undecryptable(strays.undecryptable)
            if len(strays.occurrences) + len(strays.undecryptable) < batch_size:
                break
        while not self._stopping and not self._redis_backing_off():
            try:
                dead = await stale_dead(self.pool, self.cipher, after, batch_size)
            except DECODE_ERRORS as exc:
                if await self._set_aside_unreadable(exc):
                    continue
                raise
            await self._set_aside_undecryptable(dead.undecryptable)
            if dead.occurrences:
                await self._dead_letter(dead.occurrences)
            break

    async def _set_aside_unreadable(self, error: BaseException) -> bool:
        """After a sweep or redelivery fetch failed to decode, quarantine the reminders it could not
        read (a time Python cannot hold); False if there were none (the error is another)."""
        ids = await quarantine_unreadable_delivering(self.pool, POLLER_ACTOR, error)
        self._count_quarantined(ids, "decode")
        return bool(ids)

    async def _set_aside_undecryptable(self, reminder_ids: list[UUID]) -> None:
        """Quarantine reminders whose deliveries could not be rebuilt (no key decrypts the payload),
        so the sweep and the redelivery claim stop taking them; the other deliveries went on."""
        if reminder_ids:
            ids = await quarantine_delivering(self.pool, POLLER_ACTOR, reminder_ids, "PayloadDecryptionError")
            self._count_quarantined(ids, "payload")

    def _count_quarantined(self, reminder_ids: list[UUID], reason: str) -> None:
        for reminder_id in reminder_ids:
            self.metrics.quarantined.labels(reason).inc()
            log.error("quarantine", reminder_id=str(reminder_id), reason=reason)

    async def _plan_wakeup(self) -> None:
        """Schedule a one-shot poll at the nearest upcoming fire if it comes before the next tick."""
        row = await self.pool.fetchrow(queries["next_due"])
        if row is None or row["next_run_at"] is None:
            return
        # Plan on our clock by the database's distance to the fire, so clock skew does not matter.
        # db_now is read before our clock (after the reply), so the plan errs a hair late, never early.
        delay = (row["next_run_at"] - row["db_now"]).total_seconds()
        if delay <= 0:
            # Due but not claimed by this poll: held by another transaction, or due only since our
            # claim. Without this, a 1 s (or 30 s) tick would be the next look.
            stuck = row["next_run_at"] == self._retrying_due
            self._due_retries = self._due_retries + 1 if stuck else 0
            self._retrying_due = row["next_run_at"]
            retry = min(RETRY_DUE_AFTER * 2 ** min(self._due_retries, 16), self.settings.poll_interval)
            self.wake_in(retry)
        elif delay < self.settings.poll_interval:
            self.wake_in(delay)

    def wake_in(self, delay: float) -> None:
        """Poll ``delay`` seconds from now (the database's distance to a fire), unless a poll is
        already planned for no later; called by _plan_wakeup and by the LISTEN on reminders_due."""
        if self._stopping:
            return
        when = self.clock() + timedelta(seconds=max(delay, 0.0))
        planned = self._planned_wakeup()
        if planned is not None and planned <= when:
            # Keep the sooner one: it polls and re-plans from next_due. Replacing it could drop a
            # wake-up the listener planned while this poll's next_due ran before that commit.
            return
        self._wake_at(when, "wakeup")

    def _planned_wakeup(self) -> datetime | None:
        job = self.scheduler.get_job("wakeup")
        when: datetime | None = getattr(job, "next_run_time", None)
        return when

    def planned_poll(self) -> datetime | None:
        """The next poll already planned (a wake-up or the regular tick), on the scheduler's clock."""
        times = [
            when
            for job in (self.scheduler.get_job("wakeup"), self.scheduler.get_job("poll"))
            if (when := getattr(job, "next_run_time", None)) is not None
        ]
        return min(times, default=None)

    async def _heartbeat(self) -> None:
        """Record this poller as alive in the heartbeat set, at most once every HEARTBEAT_EVERY s."""
        moment = time.monotonic()
        if moment - self._last_beat < HEARTBEAT_EVERY or self._redis_backing_off():
            return
        trim = moment - self._last_trim >= HEARTBEAT_TRIM_EVERY
        try:
            await self._heartbeat_script(
                keys=[POLLER_HEARTBEATS], args=[self.poller_id, int(trim), HEARTBEAT_TTL]
            )
        except REDIS_ERRORS as exc:
            # The same backoff as a push: with Redis down, no tick waits on it once more.
            log.error("heartbeat_failed", error=repr(exc), retry_in=self._redis_failed())
            return
        self._last_beat = moment
        if trim:
            self._last_trim = moment

    def _wake_at(self, when: datetime, job_id: str) -> None:
        self.scheduler.add_job(
            self.poll,
            DateTrigger(run_date=when),
            id=job_id,
            replace_existing=True,
            misfire_grace_time=None,
            max_instances=WAKEUP_INSTANCES,
        )

    # -- the REST sync tick -------------------------------------------------------------------

    async def update_jobs_from_rest(self) -> None:
        """Read the upcoming schedule from the REST API and plan wake-ups for what is near."""
        key = self._api_key()
        if self.http is None or key is None:
            return
        items = await fetch_scheduled(self.http, key, max_retries=self.settings.sync_max_retries)
        if items is None:
            self.metrics.errors.labels("poller", "api").inc()
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

    # -- the state gauges ---------------------------------------------------------------------

    async def refresh_stats(self) -> None:
        """Set the shared state gauges (reminders by status, backlog, queues...) from fresh counts."""
        await refresh_stats(self.metrics, self.pool, self.redis)

    # -- the retention tick -------------------------------------------------------------------

    async def apply_retention(self) -> Pruned | None:
        """Apply the retention rules unless another prune holds the lock; what went, or None."""
        try:
            pruned = await prune(
                self.pool,
                delivery_retention_days=self.settings.delivery_retention_days,
                audit_retention_days=self.settings.audit_retention_days,
            )
        except DATABASE_ERRORS as exc:
            self.metrics.errors.labels("poller", "database").inc()
            log.error("prune_failed", error=repr(exc))
            return None
        if pruned is None:
            log.info("prune_skipped", reason="another prune holds the lock")
        else:
            log.info("pruned", **asdict(pruned))
        return pruned

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the ticks on the running event loop."""
        now = datetime.now(UTC)
        self._every(self.poll, self.settings.poll_interval, "poll", first=now)
        self._every(self.update_jobs_from_rest, self.settings.sync_interval, "sync", first=now)
        if self.settings.stats_interval > 0:
            self._every(self.refresh_stats, self.settings.stats_interval, "stats", first=now)
        if self.settings.prune_interval_hours > 0:
            # First after one interval: a poller restarting in a loop does not prune each time.
            self._every(self.apply_retention, self.settings.prune_interval_hours * 3600, "prune")
        self.scheduler.start()
        self.listener = WakeupListener(
            self.settings.require_database_url(), self.wake_in, self.planned_poll, self.clock, self.metrics
        )
        self.listener.start()

    def _every(
        self, job: Callable[[], Awaitable[object]], seconds: float, job_id: str, first: datetime | None = None
    ) -> None:
        """A periodic tick; one run at a time, and runs missed while one was running are merged."""
        self.scheduler.add_job(
            job,
            IntervalTrigger(seconds=seconds),
            id=job_id,
            max_instances=1,
            coalesce=True,
            **({} if first is None else {"next_run_time": first}),
        )

    async def stop(self) -> None:
        """Stop the ticks, letting a batch in flight finish: claimed, pushed and recorded as sent.

        APScheduler's own shutdown cancels running jobs, which could cut a batch between its push
        and its commit (the next claim would repair it, finding the events' markers) or a sweep's
        push and its mark; so no new batch starts once stopping, and the scheduler shuts down only
        after the current one is done.
        """
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.pause()
        if self.listener is not None:
            await self.listener.close()
        async with self._poll_lock:
            pass
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self._leave()

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` has begun (no new batch starts)."""
        return self._stopping

    async def _leave(self) -> None:
        """Take this poller out of the heartbeat set, so it stops counting as seen at once."""
        if self._last_beat == float("-inf") or self._redis_backing_off():
            return  # never beat, or Redis is down: the entry ages out of the window anyway
        try:
            await self.redis.zrem(POLLER_HEARTBEATS, self.poller_id)
        except REDIS_ERRORS as exc:
            log.warning("heartbeat_leave_failed", error=repr(exc))
