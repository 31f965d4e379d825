"""Every Redis key the service uses.

The marker keys carry the queue name as a hash tag, so a Redis Cluster keeps them in the
queue's slot and the push script may touch both.
"""

from __future__ import annotations

from uuid import UUID

# The list assistants consume: events are RPUSHed, consumers take from the left (FIFO).
EVENT_QUEUE = "queue:to_assistant"
# Events whose delivery gave up (filled by the redelivery logic).
DEAD_LETTER_QUEUE = "queue:to_assistant:dead"


def sent_marker(event_id: UUID, attempt: int, queue: str = EVENT_QUEUE) -> str:
    """Set once (event_id, attempt) is in ``queue``; makes the push idempotent."""
    return "{" + queue + "}:sent:" + str(event_id) + ":" + str(attempt)
# Pollers' heartbeats: a sorted set of poller ids scored by the Unix time each was last seen.
POLLER_HEARTBEATS = "reminders:pollers"
