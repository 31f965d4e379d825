"""Early wake-ups: each poller LISTENs on ``reminders_due`` for fires the API just made sooner.

A poller sleeps until its next tick or the nearest ``next_run_at`` it knew of at its last poll. When
the API stores a reminder due before that (create, a PATCH, resume, snooze), it NOTIFYs this channel
with the new ``next_run_at`` (epoch seconds on the database clock) in the same transaction, so the
notification arrives only once the row is committed and visible to a claim.

The listener holds a connection of its own, outside the pool: LISTEN is per session, and a pooled
connection would be handed to other work (and reset, which UNLISTENs). It reconnects with backoff
when that connection drops, then re-plans from ``next_due``, since notifications sent while it was
away are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from core.db import DATABASE_ERRORS
from core.metrics import Metrics
from core.queries import queries
from poller.sync import backoff_delay

log = structlog.get_logger("poller")

CHANNEL = "reminders_due"
# An idle LISTEN connection gets no traffic, so a silently dead one (a network partition, no FIN)
# would go unnoticed: a trivial query this often proves it alive.
KEEPALIVE_EVERY = 15.0
# Connect and query timeouts of the listen connection (seconds).
CONNECT_TIMEOUT = 5.0
QUERY_TIMEOUT = 5.0
# Reconnect backoff: 0.1 s, 0.2 s, 0.4 s... up to this cap. A connection that stays up this long
# counts as healthy again, so only repeated quick failures grow the delay.
RECONNECT_BASE = 0.1
RECONNECT_MAX_DELAY = 10.0
STABLE_AFTER = 30.0
# A notified fire later than an already planned poll by more than this is left to that poll: it
# re-plans from next_due (where the committed row shows) and so wakes for it anyway. The margin
# covers the error of the clock offset used for the comparison, so a close call is never skipped.
SKIP_MARGIN = 0.01
APPLICATION_NAME = "reminders-poller-listen"


class ListenerLost(ConnectionError):
    """The listen connection was closed under us (terminated, server restart)."""


class WakeupListener:
    """LISTENs on ``reminders_due`` and asks for a wake-up when a sooner fire is announced.

    ``wake(delay)`` gets the database's distance (seconds) from now to the fire, measured on this
    connection right before the call; the caller plans on its own clock by that distance, so clock
    skew between the poller and the database does not matter. ``planned()`` is the poller's next
    poll on ``clock()``'s time, if any: a notification for a later fire needs no wake-up of its own.
    """

    def __init__(
        self,
        database_url: str,
        wake: Callable[[float], None],
        planned: Callable[[], datetime | None],
        clock: Callable[[], datetime],
        metrics: Metrics,
    ) -> None:
        self.database_url = database_url
        self._wake = wake
        self._planned = planned
        self._clock = clock
        self._metrics = metrics
        # The soonest fire notified and not yet handled (database epoch seconds); many notifications
        # arriving while one is handled collapse into this one value.
        self._pending: float | None = None
        self._signal = asyncio.Event()
        self._lost = False
        # Database clock minus ours (seconds), from the last clock query; only for skipping.
        self._offset: float | None = None
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failures = 0
        self.connected = asyncio.Event()
        self.notifications = 0

    @property
    def backend_pid(self) -> int | None:
        """The server pid of the current listen connection (None while disconnected)."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else conn.get_server_pid()

    def start(self) -> None:
        """Connect and listen in the background, on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="wakeup-listener")

    async def close(self) -> None:
        """Stop listening and close the connection (gracefully if it is idle)."""
        self._closing = True
        self._signal.set()
        conn = self._conn
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(*DATABASE_ERRORS):
                await conn.close(timeout=QUERY_TIMEOUT)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the connection loop ------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            up_since: float | None = None
            try:
                conn = await asyncpg.connect(
                    self.database_url,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": APPLICATION_NAME, "timezone": "UTC"},
                )
            except DATABASE_ERRORS as exc:
                self._failed(exc)
            else:
                self._conn, self._lost = conn, False
                try:
                    conn.add_termination_listener(self._on_terminated)
                    await conn.add_listener(CHANNEL, self._on_notify)
                    up_since = time.monotonic()
                    self.connected.set()
                    if self.failures:
                        log.info("listen_reconnected", after_failures=self.failures)
                    # Whatever was notified while we were away is lost: plan from the table instead.
                    await self._catch_up(conn)
                    await self._serve(conn)
                except DATABASE_ERRORS as exc:
                    if self._closing:
                        break
                    if up_since is not None and time.monotonic() - up_since >= STABLE_AFTER:
                        self.failures = 0
                    self._failed(exc)
                finally:
                    self.connected.clear()
                    self._conn = None
                    if not conn.is_closed():
                        conn.terminate()  # no await: this also runs when close() cancels us
            if not self._closing:
                await asyncio.sleep(backoff_delay(self.failures - 1, RECONNECT_BASE, RECONNECT_MAX_DELAY))

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self._metrics.errors.labels("poller", "listen").inc()
        log.error(
            "listen_failed",
            error=repr(exc),
            retry_in=backoff_delay(self.failures - 1, RECONNECT_BASE, RECONNECT_MAX_DELAY),
        )

    async def _serve(self, conn: asyncpg.Connection) -> None:
        """Handle notifications until the connection is lost (raises) or we are closing (returns)."""
        while not self._closing:
            try:
                await asyncio.wait_for(self._signal.wait(), KEEPALIVE_EVERY)
            except TimeoutError:
                await self._db_epoch(conn)  # proves the connection alive (raises if it is not)
                continue
            self._signal.clear()
            if self._lost or conn.is_closed():
                raise ListenerLost("the listen connection was closed")
            fire, self._pending = self._pending, None
            if fire is not None:
                await self._handle(conn, fire)

    async def _catch_up(self, conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(queries["next_due"], timeout=QUERY_TIMEOUT)
        if row is not None and row["next_run_at"] is not None:
            await self._handle(conn, row["next_run_at"].timestamp())

    async def _handle(self, conn: asyncpg.Connection, fire: float) -> None:
        planned = self._planned()
        if planned is not None and self._offset is not None:
            if fire - self._offset > planned.timestamp() + SKIP_MARGIN:
                return
        # The distance is measured now, on the database clock, rather than from the NOTIFY's own
        # time: the notification may have waited in the socket, and our clock may be skewed.
        db_now = await self._db_epoch(conn)
        self._wake(fire - db_now)

    async def _db_epoch(self, conn: asyncpg.Connection) -> float:
        """The database clock (epoch seconds); also refreshes the offset to ours."""
        db_now: datetime = await conn.fetchval(queries["db_now"], timeout=QUERY_TIMEOUT)
        # Our clock read after the reply: the offset errs towards planning a hair late, never early.
        self._offset = db_now.timestamp() - self._clock().timestamp()
        return db_now.timestamp()

    # -- callbacks from asyncpg ---------------------------------------------------------------

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        del conn, pid, channel
        try:
            fire = float(str(payload))
        except ValueError:
            log.warning("listen_bad_payload", payload=str(payload)[:100])
            return
        self.notifications += 1
        if self._pending is None or fire < self._pending:
            self._pending = fire
        self._signal.set()

    def _on_terminated(self, conn: Any) -> None:
        # Only the current connection: one we aborted ourselves reports its end later, and must not
        # mark its successor lost.
        if conn is self._conn:
            self._lost = True
            self._signal.set()
