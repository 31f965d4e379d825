"""One poller process: APScheduler drives its ticks; Postgres decides what fires."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import httpx
import redis.asyncio as redis
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.crypto import PayloadCipher
from core.db import DATABASE_ERRORS, Pool
from core.exceptions import PayloadCryptoError
from core.logging import renders_json
from core.metrics import Metrics
from core.queries import queries
from core.retention import Pruned, prune
from core.settings import Settings
from core.stats import refresh_stats
from poller.backoff import RedisBackoff
from poller.dispatch import Dispatcher, DispatchSettings
from poller.firelog import FireLog
from poller.heartbeat import Heartbeat
from poller.push import EventPusher
from poller.redelivery import Redelivery, RedeliverySettings
from poller.sender import Sender
from poller.set_aside import SetAside
from poller.strays import StraySweep, SweepSettings
from poller.sync import fetch_scheduled, upcoming_times
from poller.wakeup import WakeupListener

log = structlog.get_logger("poller")

# Something is due yet this poll claimed nothing: another poller (or an API transaction) holds the
# row, or it came due between our claim and next_due. Poll again this soon rather than wait for the
# tick; the holder commits within milliseconds, so this spins a few times at most (doubling while the
# same fire stays stuck, e.g. behind a stalled API transaction, up to the poll interval).
RETRY_DUE_AFTER = 0.005
# Wake-ups may overlap (a wake-up polls while the next one comes due); APScheduler would skip the
# second if only one instance may run, and the poll lock serialises them anyway.
WAKEUP_INSTANCES = 4


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
        self.http = http
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._poll_lock = asyncio.Lock()
        self._stopping = False
        # LISTENs for sooner fires announced by the API; created by start(), closed by stop().
        self.listener: WakeupListener | None = None
        # The due fire the last poll could not claim, and how many polls in a row could not.
        self._retrying_due: datetime | None = None
        self._due_retries = 0
        # The services one poll runs, each with its slice of the settings; Poller only schedules.
        backoff = RedisBackoff(settings.redis_retry_max_delay, self.metrics)
        fire_log = FireLog(json_lines=renders_json(settings.log_format), level=settings.log_level)
        self.sender = Sender(
            EventPusher(redis_client, settings.event_marker_ttl),
            backoff,
            self.metrics,
            fire_log,
            settings.ack_timeout,
            clock,
        )
        self.heartbeat = Heartbeat(redis_client, self.poller_id, backoff)
        set_aside = SetAside(pool, self.metrics)
        stopping = self._is_stopping
        self.dispatcher = Dispatcher(
            DispatchSettings(settings.batch_size, settings.claim_lanes, settings.ack_timeout),
            pool,
            self.cipher,
            self.sender,
            self.heartbeat,
            set_aside,
            self.metrics,
            stopping,
        )
        self.redelivery = Redelivery(
            RedeliverySettings(settings.batch_size, settings.max_attempts),
            pool,
            self.cipher,
            self.sender,
            set_aside,
            stopping,
        )
        self.sweep = StraySweep(
            SweepSettings(settings.batch_size, settings.sweep_after),
            pool,
            self.cipher,
            self.sender,
            set_aside,
            stopping,
        )

    @property
    def pusher(self) -> EventPusher:
        """The Redis pusher every service sends through (tests put a gated one in its place)."""
        return self.sender.pusher

    @pusher.setter
    def pusher(self, pusher: EventPusher) -> None:
        self.sender.pusher = pusher

    @property
    def fired(self) -> int:
        """Events in the pushes Redis confirmed to this poller (fires and redeliveries; a stray
        another poller pushed too counts here as well, but once in the metrics)."""
        return self.sender.fired

    # -- the poll tick ------------------------------------------------------------------------

    async def poll(self, now: datetime | None = None) -> int:
        """One tick: fire what is due, redeliver what went unacknowledged, re-push strays.

        Returns the occurrences recorded. Full batches poll again at once, so a backlog drains
        at full speed; ``now`` overrides the database clock (tests only).
        """
        async with self._poll_lock:
            recorded = 0
            try:
                recorded = await self.dispatcher.run_once(now)
                if not self._stopping:
                    await self.redelivery.run_once()
                    await self.sweep.run_once()
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
        await self.heartbeat.leave()

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` has begun (no new batch starts)."""
        return self._stopping

    def _is_stopping(self) -> bool:
        # Handed to the services, which ask before each batch.
        return self._stopping
