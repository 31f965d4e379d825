"""Setting aside, for the redelivery and the sweep, reminders whose deliveries cannot be rebuilt."""

from __future__ import annotations

from uuid import UUID

import structlog

from core.db import Pool
from core.metrics import Metrics
from poller.claim import POLLER_ACTOR
from poller.unreadable import quarantine_delivering, quarantine_unreadable_delivering

log = structlog.get_logger("poller")


class SetAside:
    """Quarantines those reminders (audited), and counts and logs each."""

    def __init__(self, pool: Pool, metrics: Metrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def unreadable(self, error: BaseException) -> bool:
        """After a fetch of deliveries failed to decode, quarantine the reminders it could not read
        (a time Python cannot hold); False if there were none (the error is another)."""
        ids = await quarantine_unreadable_delivering(self._pool, POLLER_ACTOR, error)
        self.counted(ids, "decode")
        return bool(ids)

    async def undecryptable(self, reminder_ids: list[UUID]) -> None:
        """Quarantine reminders whose payload no key decrypts, so the sweep and the redelivery stop
        taking their deliveries; the other deliveries went on."""
        if reminder_ids:
            ids = await quarantine_delivering(
                self._pool, POLLER_ACTOR, reminder_ids, "PayloadDecryptionError"
            )
            self.counted(ids, "payload")

    def counted(self, reminder_ids: list[UUID], reason: str) -> None:
        """Count and log reminders set aside (here, or by a claim) for ``reason``."""
        for reminder_id in reminder_ids:
            self._metrics.quarantined.labels(reason).inc()
            log.error("quarantine", reminder_id=str(reminder_id), reason=reason)
