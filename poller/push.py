"""Push events to Redis: one round trip per batch, idempotent per (event_id, attempt)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import redis.asyncio as redis

from core.events import Occurrence, encode_event, format_time
from core.readiness import REDIS_ERRORS
from core.redis_keys import EVENT_QUEUE, sent_marker, set_sent_marker

# KEYS[1] is the queue; KEYS[2..m+1] the marker hashes and KEYS[m+2..2m+1], in the same order,
# the marker sets that came before them. ARGV[1] is the marker TTL, ARGV[2] two bytes per event
# naming its hash (0 for KEYS[2]), ARGV[3] the events' members end to end and ARGV[4] their
# lengths, ARGV[5] the events end to end and ARGV[6] theirs, ARGV[7] each event's triggered_at
# (microseconds after its scheduled time, as text) end to end and ARGV[8] their lengths (four
# bytes each, big-endian), in the order the events go into the list. Long arguments rather than
# several per event: redis-py spent more packing those than Redis running the script.
#
# An event is pushed only if its member is in no marker, and it is added in the same atomic step:
# a retry after a lost reply, two pollers sweeping the same delivery, or a claim repeated after a
# crash never put an event in the list twice. Each hash maps a member to the triggered_at its event
# went out with, and the script returns, after the count pushed, the position and stored value of
# every event a marker already held: a claim repeated after a crash between push and commit
# records the time its assistant saw, so every attempt of the event says the same triggered_at.
# Each marker lives the marker TTL past its last addition. Before the hashes, markers were sets
# (no time); an event marked there is not pushed again either, so an upgrade under way is safe,
# and a set that no longer exists costs one EXISTS per batch. The script touches only the keys it
# is given, all in the queue's hash slot (core/redis_keys.py).
_PUSH_ONCE = """
local function split(blob, lengths)
  local parts, position = {}, 1
  for i = 1, #lengths / 4 do
    local a, b, c, d = string.byte(lengths, 4 * i - 3, 4 * i)
    local size = ((a * 256 + b) * 256 + c) * 256 + d
    parts[i] = string.sub(blob, position, position + size - 1)
    position = position + size
  end
  return parts
end
local ttl, hashes = ARGV[1], ARGV[2]
local members, events = split(ARGV[3], ARGV[4]), split(ARGV[5], ARGV[6])
local offsets = split(ARGV[7], ARGV[8])
local n = #hashes / 2
local m = (#KEYS - 1) / 2
local groups, order = {}, {}
for i = 1, n do
  local s = string.byte(hashes, 2 * i - 1) * 256 + string.byte(hashes, 2 * i) + 2
  local group = groups[s]
  if not group then
    group = {}
    groups[s] = group
    order[#order + 1] = s
  end
  group[#group + 1] = i
end
local fresh, taken, earlier = {}, {}, {}
for _, s in ipairs(order) do
  local group = groups[s]
  local old_set = KEYS[s + m]
  local has_old = redis.call('EXISTS', old_set) == 1
  local added = false
  for first = 1, #group, 1000 do
    local last = math.min(first + 999, #group)
    local chunk = {}
    for j = first, last do
      chunk[#chunk + 1] = members[group[j]]
    end
    local stored = redis.call('HMGET', KEYS[s], unpack(chunk))
    local in_old = {}
    if has_old then
      in_old = redis.call('SMISMEMBER', old_set, unpack(chunk))
    end
    local add = {}
    for j = 1, #chunk do
      local member, i = chunk[j], group[first + j - 1]
      if stored[j] then
        earlier[#earlier + 1] = i
        earlier[#earlier + 1] = stored[j]
      elseif in_old[j] ~= 1 and not taken[member] then
        taken[member] = true
        add[#add + 1] = member
        add[#add + 1] = offsets[i]
        fresh[i] = true
      end
    end
    if #add > 0 then
      redis.call('HSET', KEYS[s], unpack(add))
      added = true
    end
  end
  if added then
    redis.call('EXPIRE', KEYS[s], ttl)
  end
end
local out = {}
for i = 1, n do
  if fresh[i] then
    out[#out + 1] = events[i]
  end
end
for i = 1, #out, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(out, i, math.min(i + 999, #out)))
end
local result = {#out}
for k = 1, #earlier do
  result[k + 1] = earlier[k]
end
return result
"""
# SMISMEMBER, which the script needs, came with Redis 6.2.
MIN_REDIS_VERSION = (6, 2)
# Events per script call: bounds the time Redis spends in one call, and keeps the sets a call
# names within what two bytes per event can index.
PUSH_CHUNK = 4096
_MICROSECOND = timedelta(microseconds=1)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"7.0.15"`` as ``(7, 0, 15)``; parts that are not numbers end it."""
    numbers: list[int] = []
    for part in version.split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


async def redis_too_old(client: redis.Redis) -> str | None:
    """The server's version if it is older than the push script needs, else None.

    None too when Redis does not answer: a poller starts without it, keeping fires in the outbox.
    """
    try:
        info = await client.info("server")
    except REDIS_ERRORS:
        return None
    version = str(info.get("redis_version", ""))
    return version if version_tuple(version) < MIN_REDIS_VERSION else None


def _lengths(parts: Sequence[str] | Sequence[bytes]) -> bytes:
    """Each part's length as four big-endian bytes, as the script's split reads them."""
    return struct.pack(f">{len(parts)}I", *map(len, parts))


@dataclass(frozen=True, slots=True)
class PushReport:
    """What one push did: how many events were new to the queue, and the triggered_at each
    already-marked event went out with the first time (an earlier claim that did not commit)."""

    pushed: int
    earlier: dict[UUID, datetime] = field(default_factory=dict)


class EventPusher:
    """Pushes encoded events to ``queue:to_assistant`` exactly once each."""

    def __init__(self, client: redis.Redis, marker_ttl: int) -> None:
        self._client = client
        self._marker_ttl = marker_ttl
        self._script = client.register_script(_PUSH_ONCE)

    async def push(self, occurrences: Sequence[Occurrence], queue: str = EVENT_QUEUE) -> int:
        """Push the events not pushed to ``queue`` before; returns how many were new to it."""
        return (await self.push_reporting(occurrences, queue)).pushed

    async def push_reporting(self, occurrences: Sequence[Occurrence], queue: str = EVENT_QUEUE) -> PushReport:
        """Push as ``push`` does, and say when the events already in ``queue`` were triggered."""
        pushed = 0
        earlier: dict[UUID, datetime] = {}
        for start in range(0, len(occurrences), PUSH_CHUNK):
            pushed += await self._push_chunk(occurrences[start : start + PUSH_CHUNK], queue, earlier)
        return PushReport(pushed, earlier)

    async def _push_chunk(
        self, occurrences: Sequence[Occurrence], queue: str, earlier: dict[UUID, datetime]
    ) -> int:
        hashes: dict[str, int] = {}
        positions = bytearray()
        members: list[str] = []
        offsets: list[str] = []
        for o in occurrences:
            key, member = sent_marker(o.event_id, o.attempt, format_time(o.scheduled_for)[:10], queue)
            positions += hashes.setdefault(key, len(hashes)).to_bytes(2)
            members.append(member)
            offsets.append(str((o.triggered_at - o.scheduled_for) // _MICROSECOND))
        events = [encode_event(o) for o in occurrences]
        args: list[bytes | str | int] = [
            self._marker_ttl,
            bytes(positions),
            "".join(members),
            _lengths(members),
            b"".join(events),
            _lengths(events),
            "".join(offsets),
            _lengths(offsets),
        ]
        keys = [queue, *hashes, *(set_sent_marker(key) for key in hashes)]
        result = await self._script(keys=keys, args=args)
        for k in range(1, len(result), 2):
            o = occurrences[int(result[k]) - 1]
            earlier[o.event_id] = o.scheduled_for + int(result[k + 1]) * _MICROSECOND
        return int(result[0])
