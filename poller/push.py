"""Push events to Redis: one round trip per batch, idempotent per (event_id, attempt)."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from core.events import Occurrence, encode_event
from core.redis_keys import EVENT_QUEUE, sent_marker

# KEYS[1] is the queue, KEYS[2..] one marker per event; ARGV[1] the marker TTL, ARGV[2..] the
# events. A marker set only if absent, in the same atomic step as the push, means a retry after a
# lost reply (or two pollers sweeping the same delivery) never puts an event in the list twice.
_PUSH_ONCE = """
local fresh = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    fresh[#fresh + 1] = ARGV[i]
  end
end
for i = 1, #fresh, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(fresh, i, math.min(i + 999, #fresh)))
end
return #fresh
"""


class EventPusher:
    """Pushes encoded events to ``queue:to_assistant`` exactly once each."""

    def __init__(self, client: redis.Redis, marker_ttl: int) -> None:
        self._client = client
        self._marker_ttl = marker_ttl
        self._script = client.register_script(_PUSH_ONCE)

    async def push(self, occurrences: Sequence[Occurrence], queue: str = EVENT_QUEUE) -> int:
        """Push the events not pushed to ``queue`` before; returns how many were new to it."""
        if not occurrences:
            return 0
        keys = [queue, *(sent_marker(o.event_id, o.attempt, queue) for o in occurrences)]
        args: list[bytes | int] = [self._marker_ttl, *(encode_event(o) for o in occurrences)]
        pushed = await self._script(keys=keys, args=args)
        return int(pushed)
