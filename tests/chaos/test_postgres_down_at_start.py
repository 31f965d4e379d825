"""Chaos 7: the API and a poller started while Postgres is down wait for it, then serve and fire.

Reminders are seeded to come due during the outage; Postgres is then stopped and the API and a
poller are started. Both must stay up (the API answering /healthz 200, /readyz 503 naming the
database and 503 with Retry-After on the routes that need it), logging their retries; once Postgres
is back, on the same port, /readyz turns 200 without a restart, the seeded reminders all fire once
(late, necessarily) and a reminder created through the API fires on its own.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.chaos.harness import API_KEY, ChaosCluster
from tests.factories import ASSISTANT_ID

pytestmark = pytest.mark.chaos

REMINDERS = 500
FIRST_DUE = timedelta(seconds=1)
LAST_DUE = timedelta(seconds=3)
DOWN_S = 4.0
WAITING_TIMEOUT_S = 20.0
# The longest retry delay is 10 s by default (REMINDERS_DB_CONNECT_RETRY_MAX_DELAY).
READY_TIMEOUT_S = 20.0
DRAIN_TIMEOUT_S = 20.0


async def until_ready(client: httpx.AsyncClient, timeout: float) -> float | None:
    """Seconds until /readyz answers 200, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if (await client.get("/readyz")).status_code == 200:
            return round(time.monotonic() - started, 2)
        await asyncio.sleep(0.2)
    return None


async def until_fired(chaos: ChaosCluster, reminder_id: str, timeout: float) -> bool:
    """Whether an event of ``reminder_id`` reaches the queue within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["payload"]["reminder_id"] == reminder_id for e in await chaos.read_queue()):
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.mark.timeout(120)
async def test_api_and_poller_started_while_postgres_is_down(chaos: ChaosCluster) -> None:
    now = datetime.now(UTC)
    seed = await chaos.seed(REMINDERS, now + FIRST_DUE, now + LAST_DUE, kind="mixed")
    known = next(iter(seed.scheduled))
    await chaos.stop_postgres()
    down_at = time.monotonic()

    api_url = await chaos.start_api(database=False)  # /healthz answers although the database does not
    assert chaos.api is not None
    [poller] = await chaos.start_pollers(1, wait=False)
    async with httpx.AsyncClient(base_url=api_url, headers={"X-API-Key": API_KEY}, timeout=10) as client:
        # At least DOWN_S, and until both have failed to connect at least once (a loaded machine
        # may take seconds to start a process): the database must be back only after that.
        deadline = time.monotonic() + WAITING_TIMEOUT_S
        while time.monotonic() - down_at < DOWN_S or not all(
            "database_unavailable" in service.log_path.read_text() for service in (chaos.api, poller)
        ):
            assert chaos.api.alive(), f"the API exited; see {chaos.api.log_path}"
            assert poller.alive(), f"the poller exited; see {poller.log_path}"
            assert time.monotonic() < deadline, "no database_unavailable line from the API or the poller"
            await asyncio.sleep(0.2)
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "database" in ready.json()["checks"], ready.text
        read = await client.get(f"/reminders/{known}")
        assert read.status_code == 503 and read.headers["Retry-After"], read.text

        await chaos.start_postgres()
        back_at = time.monotonic()
        ready_after = await until_ready(client, READY_TIMEOUT_S)
        assert ready_after is not None, f"/readyz not 200 {READY_TIMEOUT_S}s after Postgres returned"

        drained = await chaos.wait_delivered(seed, timeout=DRAIN_TIMEOUT_S)
        verdict = await chaos.verdict(
            "postgres_down_at_start",
            seed,
            outage_s=round(back_at - down_at, 1),
            api_ready_after_return_s=ready_after,
            delivered_after_return_s=drained,
        )
        assert drained is not None, (
            f"not delivered {DRAIN_TIMEOUT_S}s after Postgres returned: {verdict.line()}"
        )
        assert not verdict.problems(late_allowed=True), (
            f"{verdict.problems(late_allowed=True)}: {verdict.line()}"
        )

        body = {
            "user_id": 123,
            "assistant_id": str(ASSISTANT_ID),
            "type": "one_time",
            "trigger_at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
            "payload": '{"text": "after the outage"}',
        }
        created = await client.post("/reminders/", json=body)
        assert created.status_code == 201, created.text
        assert await until_fired(chaos, created.json()["id"], timeout=10), "the new reminder did not fire"

    assert chaos.api.alive() and poller.alive()
    assert "Traceback" not in poller.log_path.read_text()
