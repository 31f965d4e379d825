"""schemathesis against the app's own OpenAPI schema: no 5xx, and every response as documented.

Every operation is one test item with a bounded, derandomized run (CI sees the same cases every
time), each request authenticated with the admin test key, against a fresh, migrated database.

The schema is the document ``create_app`` serves (built once at collection; the fixture checks the
app under test serves the very same). Requests reach the app in-process through schemathesis' ASGI
transport, which runs the app's lifespan on its own event loop, so the app opens its own pool
there; the schemathesis pytest plugin ends that lifespan when the test ends, before the database
fixture drops the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis

from api.app import create_app
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY
from tests.factories import insert_reminder
from tests.integration._asgi_proxy import CurrentApp
from tests.unit.test_openapi import document

MAX_EXAMPLES = 25
# Reminders that exist in every test's database, so that the operations on one reminder reach their
# success answers (and have those bodies checked) instead of only ever answering 404.
SEEDED_USER = 123
ONE_TIME_ID = uuid.UUID("5c4e0000-0000-4000-8000-000000000001")
RECURRING_ID = uuid.UUID("5c4e0000-0000-4000-8000-000000000002")
# Per seeded reminder: an event sent and awaiting its ack, and one dead-lettered (ack: 409).
SENT_EVENTS = {ONE_TIME_ID: uuid.UUID("5c4e0000-0000-4000-8000-0000000000e1"),
               RECURRING_ID: uuid.UUID("5c4e0000-0000-4000-8000-0000000000e2")}  # fmt: skip
DEAD_EVENTS = {ONE_TIME_ID: uuid.UUID("5c4e0000-0000-4000-8000-0000000000d1"),
               RECURRING_ID: uuid.UUID("5c4e0000-0000-4000-8000-0000000000d2")}  # fmt: skip

pytestmark = pytest.mark.integration


CURRENT_APP = CurrentApp()
schema = schemathesis.openapi.from_dict(
    document(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 1,
            # Every request carries the admin key (the scheme named in the schema).
            "auth": {"openapi": {"APIKeyHeader": {"api_key": TEST_API_KEY}}},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            # Half the ids are the seeded ones, the other half generated (mostly 404s, or 422s).
            "dictionaries": {
                "reminders": {"values": [str(ONE_TIME_ID), str(RECURRING_ID)]},
                "users": {"values": [SEEDED_USER]},
                "events": {"values": [str(e) for e in (*SENT_EVENTS.values(), *DEAD_EVENTS.values())]},
            },
            "parameters": {
                "path.reminder_id": {"dictionary": "reminders", "probability": 0.5},
                "path.user_id": {"dictionary": "users", "probability": 0.5},
                "body.event_id": {"dictionary": "events", "probability": 0.5},
            },
            # Every check is on (as `--checks all`); negative_data_rejection also counts 413 as a
            # rejection: a body over REMINDERS_MAX_BODY_BYTES is refused before it is parsed.
            # Excluded by design, per operation (see "operations" below): positive_data_acceptance
            # where the input has rules JSON Schema cannot state: `payload` is JSON-object text,
            # `cron_expression`/`cron` a valid cron, `timezone` an IANA zone, times within the
            # scheduler's range, cross-field rules (trigger_at xor trigger_in, cron with recurring,
            # snooze's for xor until), ack `details` storable in jsonb (no NUL).
            "checks": {
                "negative_data_rejection": {
                    "expected-statuses": [
                        "400",
                        "401",
                        "403",
                        "404",
                        "405",
                        "406",
                        "409",
                        "413",
                        "415",
                        "422",
                        "428",
                        "429",
                        "5xx",
                    ]
                },
            },
            "operations": [
                {
                    "include-operation-id": operation_id,
                    "checks": {"positive_data_acceptance": {"enabled": False}},
                }
                for operation_id in (
                    "create_reminder",
                    "update_reminder",
                    "preview_schedule",
                    "snooze_reminder",
                    "ack_event",
                )
            ],
        }
    ),
)
schema.app = CURRENT_APP  # in-process (ASGI) calls, to the current test's app


@pytest.fixture
async def seeded(pool: Pool) -> None:
    """A pending one-time and an active recurring reminder of SEEDED_USER, at the fixed ids."""
    now = datetime.now(UTC)
    for fixed, cron in ((ONE_TIME_ID, None), (RECURRING_ID, "0 10 * * *")):
        made = await insert_reminder(
            pool, next_run_at=now + timedelta(hours=2), cron_expression=cron, user_id=SEEDED_USER
        )
        await pool.execute("UPDATE reminders SET id = $1 WHERE id = $2", fixed, made)
        await pool.executemany(
            "INSERT INTO deliveries (event_id, reminder_id, scheduled_for, state, sent_at)"
            " VALUES ($1, $2, $3, $4, $3)",
            [
                (SENT_EVENTS[fixed], fixed, now - timedelta(minutes=1), "sent"),
                (DEAD_EVENTS[fixed], fixed, now - timedelta(minutes=2), "dead"),
            ],
        )


@pytest.fixture
def app(settings: Settings) -> Iterator[None]:
    # The rate limit is off: a few hundred requests in a burst would otherwise turn into 429s (a
    # documented answer, but one that hides the operation behind it); test_limits covers it.
    app = create_app(
        settings.model_copy(
            update={"rate_limit_per_second": 0.0, "unauthenticated_rate_limit_per_second": 0.0}
        )
    )
    assert app.openapi() == schema.raw_schema, "the app under test serves another schema"
    CURRENT_APP.app = app
    try:
        yield
    finally:
        CURRENT_APP.app = None


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # One app (and database) per operation, shared by its examples, is intended; and each example
    # is a request to a real database, which is not what too_slow is about.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
)
@pytest.mark.usefixtures("seeded", "app")
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()
