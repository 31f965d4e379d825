"""Fire times with real processes and the real clock (issue 5): a seconds cron, snooze, max_runs.

Each test runs the API and one poller as subprocesses, creates reminders over HTTP and reads the
events from `queue:to_assistant` as an assistant would (the reference consumer, acking each one).
Fire times are compared on the database's clock only (``scheduled_for`` and ``triggered_at`` both
come from it), so a skew between the test's clock and the database's cannot fail them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from client import HandlerResult
from tests.conftest import TEST_API_KEY
from tests.e2e.stack import Assistant, Received
from tests.factories import ASSISTANT_ID

pytestmark = pytest.mark.e2e

EVERY_2_SECONDS = "*/2 * * * * *"  # six fields: seconds first
PERIOD = timedelta(seconds=2)
# How long after its time an occurrence may go out. The poller wakes on the dot (and polls every
# 0.2 s); measured lags are under 10 ms even with both cores of a 2-core machine busy. 1.5 s leaves
# room for a loaded CI machine while still catching a fire most of a period late.
MAX_LAG = timedelta(seconds=1.5)
# Slack on every wait for an event, beyond when it is due at the latest.
SLACK = 2.0


@pytest.fixture
async def api(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the running API, with the test credential."""
    async with httpx.AsyncClient(base_url=api_url, headers={"X-API-Key": TEST_API_KEY}) as client:
        yield client


@pytest.fixture
def assistant(api: httpx.AsyncClient, redis_client: redis.Redis) -> Assistant:
    """The assistant consuming the events; it acks each with ``continue``."""
    return Assistant(redis_client, api)


async def create(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """Create a reminder for the test assistant; the stored reminder."""
    body = {"user_id": 123, "assistant_id": str(ASSISTANT_ID), "payload": '{"text": "tick"}', **fields}
    response = await api.post("/reminders/", json=body)
    assert response.status_code == 201, response.text
    reminder: dict[str, Any] = response.json()
    return reminder


async def snooze(api: httpx.AsyncClient, reminder_id: str, body: dict[str, str]) -> datetime:
    """Snooze the reminder; the time its next occurrence was moved to."""
    response = await api.post(f"/reminders/{reminder_id}/snooze", json=body)
    assert response.status_code == 200, response.text
    return datetime.fromisoformat(response.json()["next_run_at"])


def as_sent(moment: datetime) -> datetime:
    """A time as an event carries it: events give milliseconds, the API microseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def next_even_second(after: datetime) -> datetime:
    """The first whole even second strictly after ``after``: where ``*/2`` fires next."""
    moment = after.replace(microsecond=0) + timedelta(seconds=1)
    return moment + timedelta(seconds=moment.second % 2)


def assert_on_time(received: list[Received], reminder_id: str) -> None:
    """Each event is this reminder's, went out within MAX_LAG after (never before) its time, not late."""
    for r in received:
        assert r.reminder_id == reminder_id
        assert r.event["attempt"] == 1
        lag = r.triggered_at - r.scheduled_for
        assert timedelta(0) <= lag <= MAX_LAG, f"{r.scheduled_for} went out {lag} after its time"
        assert not r.event["payload"].get("late", False) and "lateness_seconds" not in r.event["payload"]
    assert len({r.event["event_id"] for r in received}) == len(received), "an occurrence came twice"


async def test_a_seconds_cron_fires_every_two_seconds_on_even_seconds(
    api: httpx.AsyncClient, assistant: Assistant
) -> None:
    reminder = await create(api, type="recurring", cron_expression=EVERY_2_SECONDS)
    # The first fire is at most one period away, then three periods for the other three.
    received = await assistant.receive(4, within=4 * PERIOD.total_seconds() + SLACK)
    assert len(received) == 4, f"only {len(received)} events in {4 * PERIOD} plus slack"
    assert_on_time(received, reminder["id"])
    times = [r.scheduled_for for r in received]
    assert times[0] == datetime.fromisoformat(reminder["next_run_at"])
    for t in times:
        # Seconds first: read the other way round (seconds last) this would be every minute.
        assert t.microsecond == 0 and t.second % 2 == 0, t
    assert [b - a for a, b in pairwise(times)] == [PERIOD] * 3

    # The chain goes on by itself; each event was acked over REST.
    state = (await api.get(f"/reminders/{reminder['id']}")).json()
    assert state["status"] == "active" and state["runs_count"] >= 4
    history = (await api.get(f"/reminders/{reminder['id']}/history")).json()
    acked = {d["event_id"] for d in history["deliveries"]["items"] if d["state"] == "acked"}
    assert {r.event["event_id"] for r in received} <= acked


async def test_snooze_moves_one_fire_of_a_series_and_the_cadence_goes_on(
    api: httpx.AsyncClient, assistant: Assistant
) -> None:
    reminder = await create(api, type="recurring", cron_expression=EVERY_2_SECONDS)
    [first] = await assistant.receive(1, within=PERIOD.total_seconds() + SLACK)
    # Snoozed right after a fire (well before the next one, 2 s later), so exactly one
    # occurrence, first + 2 s, lies before the snoozed time and is the one moved.
    moved_to = await snooze(api, reminder["id"], {"for": "PT3S"})
    assert timedelta(seconds=3) <= moved_to - first.triggered_at <= timedelta(seconds=3) + MAX_LAG

    after = await assistant.receive(3, within=(moved_to - first.scheduled_for).total_seconds() + 4 + SLACK)
    assert len(after) == 3, [r.event["payload"]["scheduled_for"] for r in after]
    assert_on_time([first, *after], reminder["id"])
    resumed = next_even_second(moved_to)
    assert [r.scheduled_for for r in after] == [as_sent(moved_to), resumed, resumed + PERIOD]
    assert first.scheduled_for + PERIOD not in [r.scheduled_for for r in after]


async def test_a_snoozed_one_time_reminder_fires_once_at_the_snoozed_time(
    api: httpx.AsyncClient, assistant: Assistant
) -> None:
    reminder = await create(api, type="one_time", trigger_in="PT2S")
    due = datetime.fromisoformat(reminder["trigger_at"])
    moved_to = await snooze(api, reminder["id"], {"for": "PT4S"})
    assert moved_to > due + timedelta(seconds=1)

    # Everything arriving until well after the snoozed time: one event, none at the original time.
    received = await assistant.receive(2, within=4 + MAX_LAG.total_seconds() + SLACK)
    assert [r.scheduled_for for r in received] == [as_sent(moved_to)]
    assert_on_time(received, reminder["id"])
    done = (await api.get(f"/reminders/{reminder['id']}")).json()
    assert done["status"] == "completed" and done["runs_count"] == 1


async def test_a_one_time_reminder_snoozed_by_the_assistant_on_its_event_fires_again(
    api: httpx.AsyncClient, redis_client: redis.Redis
) -> None:
    # "Remind me again in 2 seconds": the handler snoozes, then the consumer acks the event as
    # it acks every handled event. The snoozed fire must still come.
    moved: list[datetime] = []

    async def snooze_once(event: dict[str, Any]) -> HandlerResult:
        if not moved:
            moved.append(await snooze(api, event["payload"]["reminder_id"], {"for": "PT2S"}))
        return HandlerResult()

    assistant = Assistant(redis_client, api, respond=snooze_once)
    reminder = await create(api, type="one_time", trigger_in="PT1S")
    [first] = await assistant.receive(1, within=1 + SLACK)
    [moved_to] = moved
    again = await assistant.receive(2, within=2 + MAX_LAG.total_seconds() + SLACK)
    assert [r.scheduled_for for r in again] == [as_sent(moved_to)]
    assert_on_time([first, *again], reminder["id"])
    done = (await api.get(f"/reminders/{reminder['id']}")).json()
    assert done["status"] == "completed"


async def test_max_runs_three_fires_three_times_then_completes(
    api: httpx.AsyncClient, assistant: Assistant
) -> None:
    reminder = await create(api, type="recurring", cron_expression=EVERY_2_SECONDS, max_runs=3)
    received = await assistant.receive(3, within=3 * PERIOD.total_seconds() + SLACK)
    assert len(received) == 3
    assert_on_time(received, reminder["id"])
    times = [r.scheduled_for for r in received]
    assert [b - a for a, b in pairwise(times)] == [PERIOD] * 2

    # The claim that sent the third occurrence also ended the series.
    done = (await api.get(f"/reminders/{reminder['id']}")).json()
    assert done["status"] == "completed" and done["runs_count"] == 3 and done["next_run_at"] is None
    # Nothing more for longer than a period and the lag allowed: no fourth occurrence.
    assert await assistant.receive(1, within=PERIOD.total_seconds() + MAX_LAG.total_seconds()) == []
    history = (await api.get(f"/reminders/{reminder['id']}/history")).json()
    assert history["deliveries"]["total"] == 3
