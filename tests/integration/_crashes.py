"""A poller that dies at the worst moment, for the tests of what the service does about it."""

from __future__ import annotations

import pytest
import redis.asyncio as redis

from core.db import Pool
from core.events import Occurrence
from poller.claim import Pushed, PushFirst, claim_batch
from poller.push import EventPusher
from tests.factories import payload_cipher


async def claim_pushing_then_crashing(pool: Pool, redis_client: redis.Redis) -> None:
    """A claim whose poller dies between its push and its commit: the events are out, the claim
    rolled back."""
    pusher = EventPusher(redis_client, marker_ttl=3600)

    async def push_then_die(occurrences: list[Occurrence]) -> Pushed:
        await pusher.push(occurrences)
        raise ConnectionResetError("the poller died before its commit")

    with pytest.raises(ConnectionResetError):
        await claim_batch(pool, 10, cipher=payload_cipher(), push_first=PushFirst(push_then_die, 60.0))
