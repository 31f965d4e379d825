"""When a create must count the assistant's live reminders (the soft cap), and when a recent count does.

Counting an assistant's live reminders reads up to ``cap`` index entries (100,000 by default): at
thousands of creates a second that count, not the insert, would be most of the database's work. The
cap is soft already (concurrent creates may pass it by a few; it bounds abuse, not billing), so each
API process reuses a count it read, adding its own creates since, while that stays more than a tenth
of the cap (the margin) below it. Near the margin a count is reused for ``ttl`` seconds; further
below, for as many ttls as the margin fits in the room left, so the other API processes would have to
create more than a margin per ttl, as near the edge, to pass the cap unseen. Within the margin every
create counts again, as before, so a small cap behaves exactly as without this. Cancellations are not
seen until the next count, which only makes this count sooner.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import UUID

DEFAULT_TTL = 1.0
# Past this many assistants the entries older than ttl are dropped, so memory stays bounded.
MAX_ENTRIES = 10_000


def margin(cap: int) -> int:
    """How far below ``cap`` a reused count must stay: a tenth of it, at least 1."""
    return max(1, cap // 10)


class LiveCounts:
    """One process's recent live-reminder count per assistant (read at, count incl. own creates)."""

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._counts: dict[UUID, tuple[float, int]] = {}

    def must_count(self, assistant_id: UUID, cap: int) -> bool:
        """Whether a create for ``assistant_id`` has to count its live reminders against ``cap``."""
        entry = self._counts.get(assistant_id)
        if entry is None:
            return True
        read_at, live = entry
        return self._clock() - read_at >= self.reuse_for(live, cap)

    def reuse_for(self, live: int, cap: int) -> float:
        """How long a count of ``live`` may stand in for a new one (0: count on every create)."""
        room = cap - margin(cap) - live
        if room <= 0:
            return 0.0
        return self._ttl * max(1.0, room / margin(cap))

    def counted(self, assistant_id: UUID, live: int) -> None:
        """Remember a count just read from the database."""
        if len(self._counts) >= MAX_ENTRIES:
            fresh_after = self._clock() - self._ttl
            self._counts = {a: e for a, e in self._counts.items() if e[0] > fresh_after}
        self._counts[assistant_id] = (self._clock(), live)

    def created(self, assistant_id: UUID) -> None:
        """Add one reminder this process just created (kept with the time of the count)."""
        entry = self._counts.get(assistant_id)
        if entry is not None:
            self._counts[assistant_id] = (entry[0], entry[1] + 1)
