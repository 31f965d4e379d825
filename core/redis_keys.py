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


def sent_marker(
    event_id: UUID, attempt: int, scheduled_day: str, queue: str = EVENT_QUEUE
) -> tuple[str, str]:
    """The hash whose field says (event_id, attempt) is in ``queue``, and that field.

    The field's value is the event's triggered_at, in microseconds after its scheduled time. One
    hash per day of the occurrences' scheduled times (``YYYY-MM-DD``, UTC) and per first hex digit
    of the event id: a field costs about 117 bytes of Redis memory (measured over 100k events; a
    set member cost 107, a key per event 165), and the sixteen hashes of a day stay small enough
    to free without a pause.
    """
    member = str(event_id) + ":" + str(attempt)
    return "{" + queue + "}:pushed:" + scheduled_day + ":" + member[0], member


def set_sent_marker(hash_key: str) -> str:
    """The set that held the same members before the hashes (no triggered_at), for an upgrade."""
    return hash_key.replace("}:pushed:", "}:sent:", 1)


# Pollers' heartbeats: a sorted set of poller ids scored by the Unix time each was last seen.
POLLER_HEARTBEATS = "reminders:pollers"
