"""Chaos 3: Postgres restarted mid-burst under API traffic; 503s (never 500s), pollers recover alone.

The API is hit in a loop (GET of a known reminder, POST of new ones) from before the restart until
after it: every answer must be a 2xx or a 503, never a 500 nor a refused or reset connection
(uvicorn itself stays up). Once Postgres is back the API answers 200 again, and the same poller
processes (not restarted) finish the burst with nothing lost, doubled or early. Fires due while
Postgres was down are necessarily late, so lateness is reported, not asserted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest

from tests.chaos.harness import API_KEY, ChaosCluster
from tests.factories import ASSISTANT_ID

pytestmark = pytest.mark.chaos

REMINDERS = 5_000
POLLERS = 2
FIRST_DUE = timedelta(seconds=2)
LAST_DUE = timedelta(seconds=12)
RESTART_AFTER_FIRST_DUE_S = 3.0
DOWN_S = 3.0
API_RECOVERY_TIMEOUT_S = 20.0
TRAFFIC_AFTER_RECOVERY_S = 2.0
# Enough concurrent clients that several pooled connections are busy or being handed out at the
# instant Postgres terminates them: the races of a restart show up only under some concurrency.
CLIENTS = 8
DRAIN_TIMEOUT_S = 30.0
ALLOWED = {200, 201, 503}


class Traffic:
    """API calls in a loop from a few concurrent clients, tallying every answer."""

    def __init__(self, base_url: str, known: UUID) -> None:
        self.base_url = base_url
        self.known = known
        self.tally: Counter[str] = Counter()
        self.bad: list[str] = []  # the first few answers that were neither 2xx nor 503
        self.created: list[UUID] = []
        self.stop = asyncio.Event()

    def _record(self, what: str, answer: httpx.Response | Exception) -> None:
        if isinstance(answer, Exception):
            outcome = type(answer).__name__
        else:
            outcome = str(answer.status_code)
            if answer.status_code == 503 and "retry-after" not in answer.headers:
                outcome = "503-without-Retry-After"
        self.tally[f"{what} {outcome}"] += 1
        if outcome not in {str(code) for code in ALLOWED} and len(self.bad) < 10:
            detail = repr(answer) if isinstance(answer, Exception) else answer.text[:200]
            self.bad.append(f"{datetime.now(UTC).isoformat()} {what} {outcome}: {detail}")

    async def _client(self, number: int) -> None:
        # A generous timeout: a hung request would also be a failure, reported by its name.
        async with httpx.AsyncClient(
            base_url=self.base_url, headers={"X-API-Key": API_KEY}, timeout=15
        ) as client:
            sequence = 0
            while not self.stop.is_set():
                sequence += 1
                try:
                    answer = await client.get(f"/reminders/{self.known}")
                except httpx.HTTPError as exc:
                    self._record("GET", exc)
                else:
                    self._record("GET", answer)
                body = {
                    "user_id": 900_000 + number,
                    "assistant_id": str(ASSISTANT_ID),
                    "type": "one_time",
                    # Far off, so these never fire during the test and do not blur the verdict.
                    "trigger_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                    "payload": f'{{"client": {number}, "n": {sequence}}}',
                }
                try:
                    answer = await client.post("/reminders/", json=body)
                except httpx.HTTPError as exc:
                    self._record("POST", exc)
                else:
                    self._record("POST", answer)
                    if answer.status_code == 201:
                        self.created.append(UUID(answer.json()["id"]))
                await asyncio.sleep(0.02)

    async def run(self) -> None:
        """Until ``stop`` is set."""
        await asyncio.gather(*(self._client(n) for n in range(CLIENTS)))


async def _wait_api_ok(base_url: str, known: UUID, timeout: float) -> float | None:
    """Seconds until GET of the known reminder answers 200 again, or None."""
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, headers={"X-API-Key": API_KEY}, timeout=5) as client:
        while time.monotonic() - started < timeout:
            try:
                if (await client.get(f"/reminders/{known}")).status_code == 200:
                    return round(time.monotonic() - started, 2)
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    return None


@pytest.mark.timeout(150)
async def test_postgres_restart(chaos: ChaosCluster) -> None:
    api_url = await chaos.start_api()
    pollers = await chaos.start_pollers(POLLERS)
    pids = [p.pid for p in pollers]
    now = datetime.now(UTC)
    seed = await chaos.seed(REMINDERS, now + FIRST_DUE, now + LAST_DUE, kind="mixed")
    known = next(iter(seed.scheduled))

    traffic = Traffic(api_url, known)
    running = asyncio.create_task(traffic.run())
    try:
        restart_at = seed.first_due + timedelta(seconds=RESTART_AFTER_FIRST_DUE_S)
        await asyncio.sleep(max(0.0, (restart_at - datetime.now(UTC)).total_seconds()))
        queued_before = await chaos.queue_length()
        down_at = time.monotonic()
        await chaos.stop_postgres()
        await asyncio.sleep(DOWN_S)
        await chaos.start_postgres()
        back_at = time.monotonic()
        api_recovered = await _wait_api_ok(api_url, known, API_RECOVERY_TIMEOUT_S)
        await asyncio.sleep(TRAFFIC_AFTER_RECOVERY_S)
    finally:
        traffic.stop.set()
        await running

    waiting_since = time.monotonic()
    drained = await chaos.wait_delivered(seed, timeout=DRAIN_TIMEOUT_S)
    finished = None if drained is None else round(waiting_since - back_at + drained, 2)
    conn = await chaos.connect()
    try:
        stored = await conn.fetchval(
            "SELECT count(*) FROM reminders WHERE id = ANY($1::uuid[])", traffic.created
        )
    finally:
        await conn.close()
    same_pollers = [p.pid for p in pollers if p.alive()] == pids and all(p.starts == 1 for p in pollers)
    verdict = await chaos.verdict(
        "postgres_restart",
        seed,
        queued_before_restart=queued_before,
        postgres_down_s=round(back_at - down_at, 1),
        api_ok_again_after_s=api_recovered,
        delivered_after_return_s=finished,
        answers=dict(sorted(traffic.tally.items())),
        bad_answers=traffic.bad,
        created_201=len(traffic.created),
        created_201_stored=stored,
        same_pollers=same_pollers,
    )
    report = verdict.line()
    assert not traffic.bad, f"answers other than 2xx/503 during the restart: {report}"
    assert api_recovered is not None, f"the API did not answer 200 after Postgres returned: {report}"
    assert stored == len(traffic.created), f"reminders acknowledged with 201 are missing: {report}"
    assert same_pollers, f"a poller died or was restarted: {report}"
    assert drained is not None, f"the pollers did not finish the burst: {report}"
    assert not verdict.problems(late_allowed=True), f"{verdict.problems(late_allowed=True)}: {report}"
