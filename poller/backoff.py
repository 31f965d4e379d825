"""The poller's Redis backoff: after a failed call, leave Redis alone for a doubling delay."""

from __future__ import annotations

import time

import structlog

from core.metrics import Metrics
from poller.sync import backoff_delay

log = structlog.get_logger("poller")


class RedisBackoff:
    """Shared by every Redis call of one poller (pushes, heartbeats), so with Redis down no tick
    waits on it more than once per delay."""

    def __init__(self, max_delay: float, metrics: Metrics) -> None:
        self._max_delay = max_delay
        self._metrics = metrics
        self._failures = 0
        self._retry_at = 0.0

    @property
    def waiting(self) -> bool:
        """Whether Redis is being left alone now."""
        return time.monotonic() < self._retry_at

    def failed(self) -> float:
        """Count a Redis failure and start (or lengthen) the backoff; returns its delay."""
        self._metrics.errors.labels("poller", "redis").inc()
        self._failures += 1
        delay = backoff_delay(self._failures - 1, cap=self._max_delay)
        self._retry_at = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        """A Redis call went through: the next failure starts from the shortest delay again."""
        if self._failures:
            log.info("redis_recovered", after_failures=self._failures)
        self._failures = 0
