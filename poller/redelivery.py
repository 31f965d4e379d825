"""Redelivery: push again the events whose ack is overdue, dead-letter those out of attempts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from core.crypto import PayloadCipher
from core.db import Pool
from poller.sender import Sender
from poller.set_aside import SetAside
from poller.sweep import claim_redeliveries
from poller.unreadable import DECODE_ERRORS


@dataclass(frozen=True, slots=True)
class RedeliverySettings:
    """The slice of the settings the redelivery reads."""

    batch_size: int
    max_attempts: int


class Redelivery:
    """One pass over the overdue deliveries, a batch at a time, until a batch comes back short."""

    def __init__(
        self,
        settings: RedeliverySettings,
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
        """Redeliver what is overdue now (nothing while stopping or while Redis is backed off)."""
        batch_size = self._settings.batch_size
        while not self._stopping() and not self._sender.backoff.waiting:
            marked: set[UUID] | None = None
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    due = await claim_redeliveries(
                        conn, self._cipher, batch_size, self._settings.max_attempts
                    )
                    if due.retry:
                        # Unconfirmed ones commit pending (attempt counted, audited) for the sweep.
                        marked = await self._sender.push_and_mark(conn, due.retry)
            except DECODE_ERRORS as exc:
                if await self._set_aside.unreadable(exc):
                    continue
                raise
            if marked is not None:
                self._sender.sent(due.retry, marked)
            await self._set_aside.undecryptable(due.undecryptable)
            if due.dead:
                await self._sender.dead_letter(self._pool, due.dead)
            if len(due.retry) + len(due.dead) + len(due.undecryptable) < batch_size:
                break
