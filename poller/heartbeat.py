"""The poller's heartbeat: its id in a Redis sorted set, scored by Redis's clock."""

from __future__ import annotations

import time

import redis.asyncio as redis
import structlog

from core.readiness import REDIS_ERRORS
from core.redis_keys import POLLER_HEARTBEATS
from poller.backoff import RedisBackoff

log = structlog.get_logger("poller")

# A heartbeat at most this often (seconds); entries older than HEARTBEAT_TTL are trimmed (by any
# poller, every HEARTBEAT_TRIM_EVERY seconds), so pollers long gone do not pile up.
HEARTBEAT_EVERY = 1.0
HEARTBEAT_TTL = 3600
HEARTBEAT_TRIM_EVERY = 60.0
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


class Heartbeat:
    """Says this poller is alive (``reminders status`` and the metrics count the recent ones)."""

    def __init__(self, client: redis.Redis, poller_id: str, backoff: RedisBackoff) -> None:
        self._client = client
        self._poller_id = poller_id
        self._backoff = backoff
        self._script = client.register_script(_HEARTBEAT)
        self._last_beat = float("-inf")
        self._last_trim = float("-inf")

    async def run_once(self) -> None:
        """Record this poller as alive, at most once every HEARTBEAT_EVERY seconds."""
        moment = time.monotonic()
        if moment - self._last_beat < HEARTBEAT_EVERY or self._backoff.waiting:
            return
        trim = moment - self._last_trim >= HEARTBEAT_TRIM_EVERY
        try:
            await self._script(keys=[POLLER_HEARTBEATS], args=[self._poller_id, int(trim), HEARTBEAT_TTL])
        except REDIS_ERRORS as exc:
            # The same backoff as a push: with Redis down, no tick waits on it once more.
            log.error("heartbeat_failed", error=repr(exc), retry_in=self._backoff.failed())
            return
        self._last_beat = moment
        if trim:
            self._last_trim = moment

    async def leave(self) -> None:
        """Take this poller out of the heartbeat set, so it stops counting as seen at once."""
        if self._last_beat == float("-inf") or self._backoff.waiting:
            return  # never beat, or Redis is down: the entry ages out of the window anyway
        try:
            await self._client.zrem(POLLER_HEARTBEATS, self._poller_id)
        except REDIS_ERRORS as exc:
            log.warning("heartbeat_leave_failed", error=repr(exc))
