"""Locust scenario for the REST API: a weighted create / get / list / pause / delete mix.

Start the API (``make run`` prints the URL and the key; set ``REMINDERS_BOOTSTRAP_API_KEY`` to fix
the key in advance), then run headless, e.g.:

    REMINDERS_BOOTSTRAP_API_KEY=k .venv/bin/locust -f loadtests/locustfile.py --headless \\
        -u 50 -r 10 -t 30s --host http://127.0.0.1:8000 --processes 2

``LOCUST_SCENARIO`` picks the users: ``mix`` (the default, the weighted mix above), ``create`` (only
POSTs, no wait) or ``get`` (only GETs of the ids listed one a line in ``LOCUST_REMINDER_IDS_FILE``,
no wait); ``loadtests/api_bench.py`` runs the last two to measure throughput.

The key comes from ``REMINDERS_BOOTSTRAP_API_KEY`` or ``LOCUST_API_KEY``. A key scoped to some
assistants (``REMINDERS_API_KEYS=secret@uuid;uuid``) needs those ids in ``LOCUST_ASSISTANT_IDS``
(comma-separated); otherwise a few random assistants are used. Each simulated user is one end user
(a random ``user_id``) and works on the reminders it created itself.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from locust import FastHttpUser, between, constant, task
from locust.exception import StopUser

# Payloads of the three use cases of the original spec (docs/design.md), as the JSON strings the API takes.
ONE_TIME_PAYLOADS = ('{"text": "Meeting", "priority": "normal"}', '{"text": "Call the bank"}')
RECURRING_PAYLOADS = (
    '{"check_type": "daily_report", "report_id": "daily_456"}',
    '{"monitor_type": "currency", "currency_pair": "USD/EUR", "threshold": 1.05, "direction": "above"}',
)
CRONS = ("0 10 * * *", "*/15 * * * *", "0 9 * * 1-5")
ZONES = ("Europe/Berlin", "UTC", "America/New_York", "Asia/Tokyo")
# Bounded per user, so a long run does not grow memory or keep hitting the same old rows.
MAX_TRACKED = 200


def api_key() -> str | None:
    """The API key from the environment, if any."""
    return os.environ.get("REMINDERS_BOOTSTRAP_API_KEY") or os.environ.get("LOCUST_API_KEY") or None


def assistant_ids() -> list[str]:
    """Assistants to create reminders for: ``LOCUST_ASSISTANT_IDS`` or five random ones."""
    given = [a.strip() for a in os.environ.get("LOCUST_ASSISTANT_IDS", "").split(",") if a.strip()]
    return given or [str(uuid.uuid4()) for _ in range(5)]


ASSISTANTS = assistant_ids()
# Only the users of this scenario are concrete; the others are abstract, so locust ignores them.
SCENARIO = os.environ.get("LOCUST_SCENARIO") or "mix"


def reminder_ids(path: str | None) -> list[str]:
    """The ids the ``get`` scenario reads: one a line in ``path`` (blank lines ignored)."""
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def one_time_body(user_id: int) -> dict[str, Any]:
    """A one-time reminder a few seconds to a few hours ahead."""
    when = datetime.now(UTC) + timedelta(seconds=random.uniform(5, 4 * 3600))
    return {
        "user_id": user_id,
        "assistant_id": random.choice(ASSISTANTS),
        "type": "one_time",
        "trigger_at": when.isoformat(),
        "payload": random.choice(ONE_TIME_PAYLOADS),
    }


def recurring_body(user_id: int) -> dict[str, Any]:
    """A recurring reminder on a cron schedule in some time zone."""
    return {
        "user_id": user_id,
        "assistant_id": random.choice(ASSISTANTS),
        "type": "recurring",
        "cron_expression": random.choice(CRONS),
        "timezone": random.choice(ZONES),
        "payload": random.choice(RECURRING_PAYLOADS),
    }


def _stop_without_key(user: FastHttpUser) -> None:
    # Without a key every request would only measure 401s.
    logging.error("set REMINDERS_BOOTSTRAP_API_KEY (or LOCUST_API_KEY) to the API key")
    user.environment.process_exit_code = 1
    if user.environment.runner is not None:
        user.environment.runner.quit()
    raise StopUser


class ReminderUser(FastHttpUser):
    """One end user's assistant: creates reminders, then reads, lists, pauses and deletes them."""

    abstract = SCENARIO != "mix"
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        """Pick this user's identity and auth header; stop the whole run if there is no key."""
        key = api_key()
        if key is None:
            _stop_without_key(self)
        self.user_id = random.randint(1, 2**40)
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}
        self.created: list[str] = []

    def _create(self, body: dict[str, Any], name: str) -> None:
        with self.client.post(
            "/reminders/", json=body, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            try:
                reminder_id = str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                response.failure(f"201 without an id: {response.text[:200]}")
                return
            self.created.append(reminder_id)
            if len(self.created) > MAX_TRACKED:
                self.created.pop(0)

    @task(4)
    def create_one_time(self) -> None:
        """A one-time reminder a few seconds to a few hours ahead."""
        self._create(one_time_body(self.user_id), "POST /reminders/ one_time")

    @task(2)
    def create_recurring(self) -> None:
        """A recurring reminder on a cron schedule in some time zone."""
        self._create(recurring_body(self.user_id), "POST /reminders/ recurring")

    @task(6)
    def get_one(self) -> None:
        """Read back one of this user's reminders."""
        if not self.created:
            return
        reminder_id = random.choice(self.created)
        with self.client.get(
            f"/reminders/{reminder_id}", headers=self.headers, name="GET /reminders/[id]", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(4)
    def list_mine(self) -> None:
        """The first page of this user's reminders."""
        with self.client.get(
            f"/reminders/user/{self.user_id}?limit=20",
            headers=self.headers,
            name="GET /reminders/user/[user_id]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            try:
                page = response.json()
                ok = isinstance(page["items"], list) and page["page"] == 1 and page["limit"] == 20
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                response.failure(f"not a page: {response.text[:200]}")

    @task(1)
    def pause(self) -> None:
        """Pause one of this user's reminders."""
        if not self.created:
            return
        reminder_id = random.choice(self.created)
        with self.client.patch(
            f"/reminders/{reminder_id}",
            json={"status": "paused"},
            headers=self.headers,
            name="PATCH /reminders/[id]",
            catch_response=True,
        ) as response:
            # 409 is a right answer too: a one-time reminder may have fired meanwhile.
            if response.status_code in (200, 409):
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(1)
    def delete(self) -> None:
        """Cancel one of this user's reminders (and stop using it)."""
        if not self.created:
            return
        reminder_id = self.created.pop(random.randrange(len(self.created)))
        with self.client.delete(
            f"/reminders/{reminder_id}",
            headers=self.headers,
            name="DELETE /reminders/[id]",
            catch_response=True,
        ) as response:
            if response.status_code != 204:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class CreateUser(FastHttpUser):
    """``LOCUST_SCENARIO=create``: POSTs only, back to back, one-time and recurring 2:1 as in the mix."""

    abstract = SCENARIO != "create"
    wait_time = constant(0)

    def on_start(self) -> None:
        """Pick this user's identity and auth header; stop the whole run if there is no key."""
        key = api_key()
        if key is None:
            _stop_without_key(self)
        self.user_id = random.randint(1, 2**40)
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def _create(self, body: dict[str, Any], name: str) -> None:
        # No JSON parsing of the answer: the load generator shares the CPU with the API under test.
        with self.client.post(
            "/reminders/", json=body, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(2)
    def create_one_time(self) -> None:
        """A one-time reminder."""
        self._create(one_time_body(self.user_id), "POST /reminders/ one_time")

    @task(1)
    def create_recurring(self) -> None:
        """A recurring reminder."""
        self._create(recurring_body(self.user_id), "POST /reminders/ recurring")


class GetUser(FastHttpUser):
    """``LOCUST_SCENARIO=get``: GETs only, back to back, of ids from ``LOCUST_REMINDER_IDS_FILE``."""

    abstract = SCENARIO != "get"
    wait_time = constant(0)

    def on_start(self) -> None:
        """Auth header and the ids to read; stop the whole run without a key or ids."""
        key = api_key()
        if key is None:
            _stop_without_key(self)
        self.headers = {"X-API-Key": key}
        self.ids = reminder_ids(os.environ.get("LOCUST_REMINDER_IDS_FILE"))
        if not self.ids:
            logging.error("set LOCUST_REMINDER_IDS_FILE to a file of reminder ids, one a line")
            self.environment.process_exit_code = 1
            if self.environment.runner is not None:
                self.environment.runner.quit()
            raise StopUser

    @task
    def get_one(self) -> None:
        """Read one reminder."""
        with self.client.get(
            f"/reminders/{random.choice(self.ids)}",
            headers=self.headers,
            name="GET /reminders/[id]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
