"""The sweep: re-push what was recorded but never confirmed by Redis (a crash, an outage), and
finish dead letters whose copy to the dead-letter list was cut short."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import structlog

from core.crypto import PayloadCipher
from core.db import Pool
from poller.sender import Sender
from poller.set_aside import SetAside
from poller.sweep import stale_dead, stale_pending
from poller.unreadable import DECODE_ERRORS

log = structlog.get_logger("poller")


@dataclass(frozen=True, slots=True)
class SweepSettings:
    """The slice of the settings the sweep reads."""

    batch_size: int
    # Seconds a delivery may stay pending (or dead but not listed) before the sweep takes it.
    sweep_after: float


class StraySweep:
    """One pass: the stale pending deliveries a batch at a time, then one batch of stale dead ones."""

    def __init__(
        self,
        settings: SweepSettings,
        pool: Pool,
        cipher: PayloadCipher,
        sender: Sender,
        set_aside: SetAside,
        stopping: Callable[[], bool],
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._cipher = cipher
        self._sender = sender
        self._set_aside = set_aside
        self._stopping = stopping

    async def run_once(self) -> None:
        """Sweep now (nothing while stopping or while Redis is backed off)."""
        await self._pending()
        await self._dead()

    def _may_go_on(self) -> bool:
        return not self._stopping() and not self._sender.backoff.waiting

    async def _pending(self) -> None:
        batch_size, after = self._settings.batch_size, self._settings.sweep_after
        while self._may_go_on():
            marked: set[UUID] | None = None
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    strays = await stale_pending(conn, self._cipher, after, batch_size)
                    if strays.occurrences:
                        log.warning("retry_pending", events=len(strays.occurrences))
                        marked = await self._sender.push_and_mark(conn, strays.occurrences)
            except DECODE_ERRORS as exc:
                if await self._set_aside.unreadable(exc):
                    continue
                raise
            if marked is not None:
                self._sender.sent(strays.occurrences, marked)
            await self._set_aside.undecryptable(strays.undecryptable)
            if len(strays.occurrences) + len(strays.undecryptable) < batch_size:
                break

    async def _dead(self) -> None:
        batch_size, after = self._settings.batch_size, self._settings.sweep_after
        while self._may_go_on():
            try:
                dead = await stale_dead(self._pool, self._cipher, after, batch_size)
            except DECODE_ERRORS as exc:
                if await self._set_aside.unreadable(exc):
                    continue
                raise
            await self._set_aside.undecryptable(dead.undecryptable)
            if dead.occurrences:
                await self._sender.dead_letter(self._pool, dead.occurrences)
            break
