"""Time zone names against the real API (issue 17, defect 3): exactly the IANA names, else a 422.

A tzdata folder name used to escape as ``IsADirectoryError``, an ``OSError``, which the API
answers as 503 "the database is unavailable" and counts as a database error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import ASSISTANT_ID, insert_reminder

JSON = {"Content-Type": "application/json"}
VIA_FASTAPI = {**JSON, "Idempotency-Key": "zone-names"}  # declined by the fast create path

# Other values than the (Europe, America, Etc; localtime, Factory, posixrules).
FOLDERS = ["Asia", "Pacific", "America/Argentina", "Antarctica", "Brazil"]
NOT_ZONES = ["right/Asia/Tokyo", "posix/Europe/Lisbon", "asia/tokyo", "Europe/Lisbon/", "Mars/Jezero"]


@pytest.fixture
async def app(settings: Settings, pool: Pool) -> FastAPI:
    made = create_app(settings)
    made.state.pool = pool
    return made


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": TEST_API_KEY}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as made:
        yield made


def _recurring(zone: str) -> dict[str, Any]:
    return {
        "user_id": 41,
        "assistant_id": str(ASSISTANT_ID),
        "type": "recurring",
        "cron_expression": "15 7 * * *",
        "timezone": zone,
        "payload": '{"text": "stretch"}',
    }


def _names_the_zone(response: httpx.Response, location: str = "body") -> bool:
    if response.status_code != 422:
        return False
    return any(e["loc"] == [location, "timezone"] for e in response.json()["detail"])


def _database_errors(app: FastAPI) -> float:
    return float(app.state.metrics.errors.labels("api", "database")._value.get())


@pytest.mark.parametrize("zone", FOLDERS + NOT_ZONES)
async def test_create_patch_and_preview_refuse_a_name_that_is_not_a_zone(
    client: httpx.AsyncClient, app: FastAPI, zone: str
) -> None:
    for headers in (JSON, VIA_FASTAPI):
        response = await client.post("/reminders/", json=_recurring(zone), headers=headers)
        assert _names_the_zone(response), (zone, response.status_code, response.text)
    created = await client.post("/reminders/", json=_recurring("Asia/Kolkata"))
    assert created.status_code == 201, created.text
    patched = await client.patch(f"/reminders/{created.json()['id']}", json={"timezone": zone})
    assert _names_the_zone(patched), patched.text
    preview = await client.get("/reminders/preview", params={"cron": "0 9 * * *", "timezone": zone})
    assert _names_the_zone(preview, "query"), preview.text
    assert _database_errors(app) == 0


@pytest.mark.parametrize("zone", ["Factory", "localtime"])
async def test_names_that_are_not_places_are_refused(client: httpx.AsyncClient, zone: str) -> None:
    response = await client.post("/reminders/", json=_recurring(zone))
    assert _names_the_zone(response)
    assert "not a place" in response.text


async def test_the_refusal_gives_the_iana_spelling(client: httpx.AsyncClient) -> None:
    response = await client.post("/reminders/", json=_recurring("pacific/auckland"))
    assert _names_the_zone(response) and "'Pacific/Auckland'" in response.text


async def test_a_folder_without_a_credential_is_no_503(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as anonymous:
        for headers in (JSON, VIA_FASTAPI):
            response = await anonymous.post("/reminders/", json=_recurring("Indian"), headers=headers)
            assert response.status_code == 401, response.text
        preview = await anonymous.get(
            "/reminders/preview", params={"cron": "* * * * *", "timezone": "Arctic"}
        )
        assert preview.status_code == 401
    assert _database_errors(app) == 0


@pytest.mark.parametrize("zone", ["America/Argentina/Buenos_Aires", "Etc/GMT-14", "US/Hawaii", "Zulu"])
async def test_iana_names_are_accepted_everywhere(client: httpx.AsyncClient, zone: str) -> None:
    created = await client.post("/reminders/", json=_recurring(zone))
    assert created.status_code == 201, created.text
    assert created.json()["timezone"] == zone
    patched = await client.patch(f"/reminders/{created.json()['id']}", json={"timezone": "Asia/Kathmandu"})
    assert patched.status_code == 200, patched.text
    preview = await client.get("/reminders/preview", params={"cron": "0 9 * * *", "timezone": zone})
    assert preview.status_code == 200 and preview.json()["timezone"] == zone


async def test_a_row_stored_with_a_zone_no_longer_accepted_answers_409_not_500(
    client: httpx.AsyncClient, pool: Pool
) -> None:
    """Rows written before the list was enforced (a paused one is not set aside by any poller)."""
    rid = await insert_reminder(
        pool,
        next_run_at=datetime.now(UTC) + timedelta(hours=2),
        cron_expression="0 * * * *",
        timezone="Factory",
    )
    await pool.execute("UPDATE reminders SET status = 'paused' WHERE id = $1", rid)
    following = await client.get(f"/reminders/{rid}/next")
    assert following.status_code == 409 and "timezone" in following.json()["detail"]
    assert (await client.post(f"/reminders/{rid}/skip")).status_code == 409
    repaired = await client.patch(f"/reminders/{rid}", json={"timezone": "Europe/Vilnius"})
    assert repaired.status_code == 200, repaired.text
    assert (await client.get(f"/reminders/{rid}/next")).status_code == 200
