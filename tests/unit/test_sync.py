"""The REST sync tick (poller/sync.py): backoff, parsing, and fetch over an in-memory transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from poller.sync import backoff_delay, fetch_scheduled, upcoming_times

API_KEY = "sync-key"

# --- backoff_delay -------------------------------------------------------------------------------


def test_backoff_grows_exponentially_from_the_base() -> None:
    assert [backoff_delay(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_is_capped() -> None:
    assert backoff_delay(6) == 30.0
    assert backoff_delay(7) == 30.0
    assert backoff_delay(1000) == 30.0


def test_backoff_is_non_decreasing_and_a_float() -> None:
    delays = [backoff_delay(n) for n in range(40)]
    assert delays == sorted(delays)
    assert all(isinstance(d, float) for d in delays)


def test_backoff_custom_base_and_cap() -> None:
    assert [backoff_delay(n, base=0.1, cap=1.0) for n in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )
    assert backoff_delay(3, base=2, cap=100) == 16.0


# --- upcoming_times ----------------------------------------------------------------------------


def test_upcoming_times_parses_dedupes_sorts_and_respects_the_horizon() -> None:
    items: list[dict[str, Any]] = [
        {"id": "c", "next_run_at": "2025-04-06T12:00:30Z"},
        {"id": "a", "next_run_at": "2025-04-06T12:00:00Z"},
        {"id": "b", "next_run_at": "2025-04-06T12:00:00Z"},
        {"id": "d", "next_run_at": "2025-04-06T12:00:00.250Z"},
        {"id": "e", "next_run_at": "2025-04-06T13:00:00Z"},
        {"id": "f", "next_run_at": None},
        {"id": "g"},
    ]
    horizon = datetime(2025, 4, 6, 12, 1, tzinfo=UTC)
    assert upcoming_times(items, horizon) == [
        datetime(2025, 4, 6, 12, 0, 0, tzinfo=UTC),
        datetime(2025, 4, 6, 12, 0, 0, 250_000, tzinfo=UTC),
        datetime(2025, 4, 6, 12, 0, 30, tzinfo=UTC),
    ]


def test_upcoming_times_are_aware_utc() -> None:
    (only,) = upcoming_times([{"next_run_at": "2025-04-06T12:00:00Z"}], datetime(2026, 1, 1, tzinfo=UTC))
    assert only.utcoffset() == timedelta(0)


def test_upcoming_times_horizon_is_inclusive() -> None:
    at = datetime(2025, 4, 6, 12, tzinfo=UTC)
    assert upcoming_times([{"next_run_at": "2025-04-06T12:00:00Z"}], at) == [at]
    assert upcoming_times([{"next_run_at": "2025-04-06T12:00:00Z"}], at - timedelta(microseconds=1)) == []


def test_upcoming_times_dedupes_the_same_instant_in_different_offsets() -> None:
    items: list[dict[str, Any]] = [
        {"next_run_at": "2025-04-06T12:00:00Z"},
        {"next_run_at": "2025-04-06T14:00:00+02:00"},
    ]
    assert upcoming_times(items, datetime(2026, 1, 1, tzinfo=UTC)) == [datetime(2025, 4, 6, 12, tzinfo=UTC)]


def test_upcoming_times_horizon_in_another_zone() -> None:
    horizon = datetime(2025, 4, 6, 13, 30, tzinfo=timezone(timedelta(hours=2)))  # 11:30Z
    items: list[dict[str, Any]] = [
        {"next_run_at": "2025-04-06T11:00:00Z"},
        {"next_run_at": "2025-04-06T12:00:00Z"},
    ]
    assert upcoming_times(items, horizon) == [datetime(2025, 4, 6, 11, tzinfo=UTC)]


def test_upcoming_times_of_nothing() -> None:
    assert upcoming_times([], datetime(2025, 1, 1, tzinfo=UTC)) == []


# --- fetch_scheduled ------------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """Records the delays the code under test asks to sleep for; never sleeps."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def scripted(responses: list[httpx.Response | Exception]) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering each request with the next scripted response (or raising it)."""
    seen: list[httpx.Request] = []
    remaining: Iterator[httpx.Response | Exception] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(remaining)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


@asynccontextmanager
async def client_for(handler: Handler) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://api.test") as c:
        yield c


ITEMS: list[dict[str, Any]] = [
    {"id": "r1", "next_run_at": "2025-04-06T12:00:00Z"},
    {"id": "r2", "next_run_at": "2025-04-06T12:05:00Z"},
]


def ok(items: list[dict[str, Any]] = ITEMS) -> httpx.Response:
    return httpx.Response(200, json={"items": items, "total": len(items)})


async def test_fetch_returns_items_on_the_first_try() -> None:
    handler, seen = scripted([ok()])
    sleep = Recorder()
    async with client_for(handler) as client:
        result = await fetch_scheduled(client, API_KEY, max_retries=3, sleep=sleep, limit=50)
    assert result == ITEMS
    assert sleep.delays == []
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/reminders/scheduled"
    assert request.url.params["limit"] == "50"
    assert request.headers["X-API-Key"] == API_KEY


async def test_fetch_default_limit_is_100() -> None:
    handler, seen = scripted([ok([])])
    async with client_for(handler) as client:
        assert await fetch_scheduled(client, API_KEY, max_retries=0, sleep=Recorder()) == []
    assert seen[0].url.params["limit"] == "100"


async def test_fetch_retries_with_backoff_then_succeeds() -> None:
    handler, seen = scripted(
        [
            httpx.Response(503, json={"detail": "down"}),
            httpx.ConnectError("refused"),
            httpx.Response(500, text="oops"),
            ok(),
        ]
    )
    sleep = Recorder()
    async with client_for(handler) as client:
        result = await fetch_scheduled(client, API_KEY, max_retries=5, sleep=sleep)
    assert result == ITEMS
    assert len(seen) == 4
    assert sleep.delays == [0.5, 1.0, 2.0]


async def test_fetch_gives_up_after_max_retries_and_returns_none() -> None:
    handler, seen = scripted([httpx.Response(503) for _ in range(4)])
    sleep = Recorder()
    async with client_for(handler) as client:
        result = await fetch_scheduled(client, API_KEY, max_retries=3, sleep=sleep)
    assert result is None
    assert len(seen) == 4  # the first try and three retries
    assert sleep.delays == [0.5, 1.0, 2.0]  # no sleep after the last failure


async def test_fetch_with_zero_retries_tries_once() -> None:
    handler, seen = scripted([httpx.ConnectError("refused")])
    sleep = Recorder()
    async with client_for(handler) as client:
        assert await fetch_scheduled(client, API_KEY, max_retries=0, sleep=sleep) is None
    assert len(seen) == 1
    assert sleep.delays == []


async def test_fetch_backoff_delays_are_capped() -> None:
    handler, _ = scripted([httpx.ReadTimeout("slow") for _ in range(10)])
    sleep = Recorder()
    async with client_for(handler) as client:
        assert await fetch_scheduled(client, API_KEY, max_retries=9, sleep=sleep) is None
    assert sleep.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize(
    "bad",
    [
        httpx.Response(401, json={"detail": "bad key"}),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"no_items": []}),
    ],
    ids=["unauthorized", "not-json", "no-items-key"],
)
async def test_fetch_treats_bad_answers_as_failures_and_retries(bad: httpx.Response) -> None:
    handler, seen = scripted([bad, ok()])
    sleep = Recorder()
    async with client_for(handler) as client:
        assert await fetch_scheduled(client, API_KEY, max_retries=2, sleep=sleep) == ITEMS
    assert len(seen) == 2
    assert sleep.delays == [0.5]
