"""The token bucket and the per-credential rate limiter (api/limits.py): pure, on a fake clock."""

from __future__ import annotations

import pytest

from api.limits import RateLimiter, TokenBucket
from core.settings import Settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_spends_its_burst_then_waits_for_a_refill() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, tokens=3.0, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token every 0.5 s
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) == pytest.approx(0.5)


def test_bucket_never_saves_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2.0, tokens=0.0, updated=0.0)
    assert bucket.full(3600.0)
    assert [bucket.take(3600.0) for _ in range(3)][:2] == [0.0, 0.0]
    assert bucket.take(3600.0) > 0


def test_limiter_answers_whole_seconds_of_at_least_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=0.25, burst=1, clock=clock)
    assert limiter.retry_after(b"k") == 0
    assert limiter.retry_after(b"k") == 4  # 1 token at 0.25/s
    clock.now += 3.5
    assert limiter.retry_after(b"k") == 1  # 0.125 s left still says 1, never 0
    clock.now += 0.5
    assert limiter.retry_after(b"k") == 0


def test_limiter_keeps_one_bucket_per_credential() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert [limiter.retry_after(b"a") for _ in range(3)] == [0, 0, 1]
    assert [limiter.retry_after(b"b") for _ in range(2)] == [0, 0]


def test_limiter_forgets_full_buckets_when_it_has_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    monkeypatch.setattr(RateLimiter, "PRUNE_ABOVE", 3)
    for key in (b"a", b"b", b"c"):
        limiter.retry_after(key)
    clock.now += 10  # every bucket has refilled
    limiter.retry_after(b"d")
    assert set(limiter.buckets) == {b"d"}


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 400), (200.0, 0)])
def test_zero_disables_the_limiter(rate: float, burst: int) -> None:
    limiter = RateLimiter(rate=rate, burst=burst, clock=FakeClock())
    assert not limiter.enabled
    assert all(limiter.retry_after(b"k") == 0 for _ in range(1000))


def test_limiter_keeps_memory_bounded_when_no_bucket_is_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=0.001, burst=5, clock=clock)
    monkeypatch.setattr(RateLimiter, "PRUNE_ABOVE", 8)
    for n in range(50):  # rotating keys (client addresses), none of them refilled
        clock.now += 0.01
        limiter.retry_after(f"addr-{n}".encode())
    assert len(limiter.buckets) <= 8
    assert b"addr-49" in limiter.buckets  # the newest are kept


def test_limit_defaults() -> None:
    settings = Settings()
    assert settings.max_body_bytes == 131072
    assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (200.0, 400)
