"""Cron expressions that mean something else are a 422 saying why (issue 17, defect 11).

``1-0 * * * *`` used to be taken and fire every minute (croniter wraps a reversed range), and a
never-firing expression cost croniter milliseconds of search per request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as redis

from core.db import Pool
from core.redis_keys import EVENT_QUEUE
from core.settings import Settings
from poller.worker import Poller
from tests.factories import ASSISTANT_ID, insert_reminder

JSON = {"Content-Type": "application/json"}
VIA_FASTAPI = {**JSON, "Idempotency-Key": "cron-meaning"}

# Other values than the (1-0 in the minutes; 30 February).
REVERSED = [
    "40-20 * * * *",
    "0 23-1 * * *",
    "0 0 28-3 * *",
    "0 9 1 SEP-MAR *",
    "0 8 * * FRI-MON",
    "55-5/5 * * * * *",
]
NEVER = ["0 9 30 2 *", "30 6 31 11 *", "0 0 31 4,9 *", "0 12 30,31 FEB *"]


def _recurring(cron: str) -> dict[str, Any]:
    return {
        "user_id": 9,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": cron,
        "payload": '{"text": "water the plants"}',
    }


def _says(response: httpx.Response, location: list[str], words: str) -> bool:
    if response.status_code != 422:
        return False
    return any(e["loc"] == location and words in e["msg"] for e in response.json()["detail"])


@pytest.mark.parametrize(
    ("cron", "words"), [*((c, "runs backwards") for c in REVERSED), *((c, "never fires") for c in NEVER)]
)
async def test_create_patch_and_preview_refuse_saying_why(
    api: httpx.AsyncClient, pool: Pool, cron: str, words: str
) -> None:
    for headers in (JSON, VIA_FASTAPI):
        response = await api.post("/reminders/", json=_recurring(cron), headers=headers)
        assert _says(response, ["body", "cron_expression"], words), response.text
    created = await api.post("/reminders/", json=_recurring("0 7 * * *"))
    patched = await api.patch(f"/reminders/{created.json()['id']}", json={"cron_expression": cron})
    assert _says(patched, ["body", "cron_expression"], words), patched.text
    preview = await api.get("/reminders/preview", params={"cron": cron})
    assert _says(preview, ["query", "cron"], words), preview.text
    assert await pool.fetchval("SELECT count(*) FROM reminders") == 1


async def test_both_day_fields_restricted_fire_on_either(api: httpx.AsyncClient) -> None:
    """cron ORs day-of-month and day-of-week: 31 February or any Sunday in February."""
    preview = await api.get("/reminders/preview", params={"cron": "0 9 31 2 SUN", "count": 3})
    assert preview.status_code == 200, preview.text
    fires = [datetime.fromisoformat(f["utc"]) for f in preview.json()["fires"]]
    assert all(f.month == 2 and f.isoweekday() == 7 for f in fires)


async def test_a_stored_reversed_range_keeps_firing(
    settings: Settings, pool: Pool, redis_client: redis.Redis, api: httpx.AsyncClient
) -> None:
    """Rows written before the refusal are not the API's to judge: the poller fires them as before."""
    rid = await insert_reminder(
        pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), cron_expression="50-10 * * * *"
    )
    await Poller(settings, pool, redis_client).poll()
    events = [orjson.loads(raw) for raw in await redis_client.lrange(EVENT_QUEUE, 0, -1)]
    assert [e["payload"]["reminder_id"] for e in events] == [str(rid)]
    row = await pool.fetchrow("SELECT status, next_run_at FROM reminders WHERE id = $1", rid)
    assert row is not None
    assert row["status"] == "active" and row["next_run_at"] > datetime.now(UTC) - timedelta(seconds=1)
    assert (await api.get(f"/reminders/{rid}/next")).status_code == 200
