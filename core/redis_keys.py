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
    """The set whose member says (event_id, attempt) is in ``queue``, and that member.

    One set per day of the occurrences' scheduled times (``YYYY-MM-DD``, UTC) and per first hex
    digit of the event id: a member costs about 95 bytes of Redis memory where a key per event
    cost 165, and the sixteen sets of a day stay small enough to free without a pause.
    """
    member = str(event_id) + ":" + str(attempt)
    return "{" + queue + "}:sent:" + scheduled_day + ":" + member[0], member


def legacy_sent_marker(member: str, queue: str = EVENT_QUEUE) -> str:
    """The marker key of releases before the marker sets: one key per (event_id, attempt)."""
    return "{" + queue + "}:sent:" + member


# Pollers' heartbeats: a sorted set of poller ids scored by the Unix time each was last seen.
POLLER_HEARTBEATS = "reminders:pollers"
