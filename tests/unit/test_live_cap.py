"""The soft cap's reuse of recent live counts (api/live_cap.py): pure, on a fake clock."""

from __future__ import annotations

import uuid

from api.live_cap import MAX_ENTRIES, LiveCounts, margin

A = uuid.UUID("00000000-0000-4000-8000-00000000000a")
B = uuid.UUID("00000000-0000-4000-8000-00000000000b")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_margin_is_a_tenth_of_the_cap_and_at_least_one() -> None:
    assert margin(100_000) == 10_000
    assert margin(25) == 2
    assert [margin(cap) for cap in (1, 2, 9)] == [1, 1, 1]


def test_an_assistant_never_counted_must_count() -> None:
    assert LiveCounts().must_count(A, 100)


def test_a_fresh_count_far_below_the_cap_is_reused_with_own_creates_added() -> None:
    clock = FakeClock()
    counts = LiveCounts(ttl=1.0, clock=clock)
    counts.counted(A, 80)
    assert not counts.must_count(A, 100)
    assert counts.must_count(B, 100)  # per assistant
    for _ in range(9):
        counts.created(A)
    assert not counts.must_count(A, 100)  # 89 < 100 - 10
    counts.created(A)
    assert counts.must_count(A, 100)  # 90: within the margin, every create counts again


def test_a_count_near_the_margin_expires_after_the_ttl() -> None:
    clock = FakeClock()
    counts = LiveCounts(ttl=1.0, clock=clock)
    counts.counted(A, 80)  # 10 below the margin: one margin of room, one ttl
    clock.now += 0.99
    assert not counts.must_count(A, 100)
    clock.now += 0.01
    assert counts.must_count(A, 100)


def test_the_further_below_the_cap_the_longer_a_count_stands() -> None:
    clock = FakeClock()
    counts = LiveCounts(ttl=1.0, clock=clock)
    counts.counted(A, 0)  # 90 of room: nine margins, nine ttls
    clock.now += 8.99
    assert not counts.must_count(A, 100)
    clock.now += 0.01
    assert counts.must_count(A, 100)


def test_passing_the_cap_unseen_takes_over_a_margin_per_ttl_at_any_count() -> None:
    # Others creating at margin/ttl per second reach at most the cap by the time a count expires.
    cap, ttl = 100_000, 1.0
    counts = LiveCounts(ttl=ttl)
    rate = margin(cap) / ttl
    for live in range(0, cap + 1, 97):
        window = counts.reuse_for(live, cap)
        if window == 0:
            assert live >= cap - margin(cap)
        else:
            assert live + rate * window <= cap


def test_a_small_cap_counts_on_every_create_but_the_first_reuse() -> None:
    # Cap 2 (as the integration test): only a count of 0 is reused, so the third create still counts
    # and is refused exactly as without the cache.
    counts = LiveCounts(ttl=60.0, clock=FakeClock())
    counts.counted(A, 0)
    assert not counts.must_count(A, 2)
    counts.created(A)
    assert counts.must_count(A, 2)
    assert LiveCounts().must_count(A, 1) and _counted(0).must_count(A, 1)


def _counted(live: int) -> LiveCounts:
    counts = LiveCounts()
    counts.counted(A, live)
    return counts


def test_created_without_a_count_remembers_nothing() -> None:
    counts = LiveCounts()
    counts.created(A)
    assert counts.must_count(A, 100)


def test_stale_entries_are_dropped_once_there_are_many() -> None:
    clock = FakeClock()
    counts = LiveCounts(ttl=1.0, clock=clock)
    for _ in range(MAX_ENTRIES):
        counts.counted(uuid.uuid4(), 0)
    clock.now += 2
    counts.counted(A, 0)
    assert len(counts._counts) == 1
