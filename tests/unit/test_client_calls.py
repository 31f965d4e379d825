"""The client's request building (``client.calls``) and both clients over a mock transport."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
import redis.asyncio as redis

from client import (
    UNSET,
    AsyncRemindersClient,
    Changes,
    DstPolicy,
    HandlerResult,
    OneTime,
    Recurring,
    RemindersClient,
    calls,
)
from client.api import env_settings
from client.errors import NotFound

RID = uuid.UUID("11111111-2222-4333-8444-555555555555")
AID = uuid.UUID("3f1c2b7e-8d4a-4c6e-9b1f-2a7d5e9c0b11")
AT = datetime(2025, 4, 6, 12, 0, tzinfo=UTC)


def reminder_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(RID), "user_id": 123, "assistant_id": str(AID), "created_by_assistant_id": str(AID),
        "type": "one_time", "trigger_at": AT.isoformat(), "cron_expression": None, "timezone": "UTC",
        "payload": '{"text":"Meeting"}', "status": "pending", "next_run_at": AT.isoformat(),
        "last_triggered_at": None, "misfire_policy": "fire_once", "misfire_grace_seconds": 60,
        "ack_required": True, "start_at": None, "until": None, "max_runs": None, "runs_count": 0,
        "dst_policy": {"gap": "shift", "repeated": "first"}, "created_at": AT.isoformat(),
        "updated_at": AT.isoformat(), "a_field_from_a_newer_server": 1,
    }  # fmt: skip
    body.update(overrides)
    return body


def test_one_time_body_sends_only_what_is_given() -> None:
    body = OneTime(123, AID, {"text": "Meeting", "user_id": 123}, trigger_in=timedelta(hours=2)).body()
    assert body == {
        "user_id": 123,
        "assistant_id": str(AID),
        "type": "one_time",
        "payload": '{"text":"Meeting","user_id":123}',
        "trigger_in": 7200.0,
    }
    assert OneTime(1, str(AID), "{}", trigger_in="PT2S").body()["trigger_in"] == "PT2S"
    assert OneTime(1, AID, "{}", trigger_at=AT).body()["trigger_at"] == "2025-04-06T12:00:00+00:00"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"trigger_at": AT, "trigger_in": 5}, {"trigger_at": datetime(2025, 1, 1)}],
)
def test_one_time_needs_exactly_one_aware_time(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        OneTime(1, AID, "{}", **kwargs).body()


def test_recurring_body_carries_its_options() -> None:
    body = Recurring(
        123,
        AID,
        "0 10 * * *",
        {"check_type": "daily_report"},
        timezone="Europe/Berlin",
        misfire_policy="skip",
        until=AT,
        max_runs=3,
        dst_policy=DstPolicy(gap="skip"),
    ).body()
    assert body["type"] == "recurring"
    assert body["cron_expression"] == "0 10 * * *"
    assert body["timezone"] == "Europe/Berlin"
    assert body["misfire_policy"] == "skip"
    assert body["until"] == AT.isoformat()
    assert body["max_runs"] == 3
    assert body["dst_policy"] == {"gap": "skip", "repeated": "first"}
    assert "start_at" not in body and "ack_required" not in body


def test_changes_send_only_set_fields_and_none_clears() -> None:
    assert Changes().body() == {}
    body = Changes(until=None, max_runs=None, payload={"a": 1}, dst_repeated="both").body()
    assert body == {"until": None, "max_runs": None, "payload": '{"a":1}', "dst_policy": {"repeated": "both"}}
    assert Changes(cron_expression="*/5 * * * *", misfire_policy=UNSET).body() == {
        "cron_expression": "*/5 * * * *"
    }


def test_create_with_idempotency_key() -> None:
    call = calls.create(OneTime(1, AID, "{}", trigger_in=5), idempotency_key="k-1")
    assert (call.method, call.path, call.headers) == ("POST", "/reminders/", {"Idempotency-Key": "k-1"})


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (calls.get(RID), "GET", f"/reminders/{RID}", None),
        (calls.set_status(RID, "paused"), "PATCH", f"/reminders/{RID}", {"status": "paused"}),
        (calls.cancel(str(RID)), "DELETE", f"/reminders/{RID}", None),
        (calls.skip(RID), "POST", f"/reminders/{RID}/skip", None),
        (calls.snooze(RID, for_="PT10M"), "POST", f"/reminders/{RID}/snooze", {"for": "PT10M"}),
        (calls.snooze(RID, until=AT), "POST", f"/reminders/{RID}/snooze", {"until": AT.isoformat()}),
        (
            calls.ack(RID, RID, action="complete", details={"rate": 1.1}),
            "POST",
            f"/reminders/{RID}/ack",
            {"event_id": str(RID), "result": "ok", "action": "complete", "details": {"rate": 1.1}},
        ),
    ],
)
def test_paths_and_bodies(call: calls.Call[Any], method: str, path: str, body: Any) -> None:
    assert (call.method, call.path, call.json) == (method, path, body)


def test_query_parameters() -> None:
    assert calls.list_user(5, status="active").params == {"page": 1, "limit": 20, "status": "active"}
    assert calls.list_scheduled(page=2, limit=5).params == {"page": 2, "limit": 5}
    assert calls.history(RID, limit=3).params == {"page": 1, "limit": 3}
    assert calls.next_fires(RID, count=2).params == {"count": 2}
    params = calls.preview("0 10 * * *", timezone="Europe/Berlin", dst_gap="skip").params
    assert params == {
        "cron": "0 10 * * *",
        "timezone": "Europe/Berlin",
        "count": 5,
        "dst_gap": "skip",
        "dst_repeated": "first",
    }


def test_ids_must_be_uuids_so_they_cannot_change_the_path() -> None:
    with pytest.raises(ValueError):
        calls.get("../scheduled")
    with pytest.raises(ValueError):
        calls.snooze(RID)


def test_auth_headers() -> None:
    assert calls.auth_headers(api_key="k") == {"X-API-Key": "k"}
    assert calls.auth_headers(token="t") == {"Authorization": "Bearer t"}
    assert calls.auth_headers() == {}
    with pytest.raises(ValueError):
        calls.auth_headers("k", "t")


def _echo(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/missing"):
            return httpx.Response(404, json={"detail": "reminder not found"})
        return httpx.Response(201, json=reminder_json())

    return httpx.MockTransport(handle)


def test_sync_client_sends_the_built_request_and_parses_the_answer() -> None:
    seen: list[httpx.Request] = []
    with RemindersClient("http://api", token="jwt", transport=_echo(seen)) as client:
        reminder = client.create(OneTime(123, AID, {"text": "Meeting"}, trigger_in=2), idempotency_key="x")
    assert reminder.id == RID and reminder.payload_data == {"text": "Meeting"}
    request = seen[0]
    assert request.headers["Authorization"] == "Bearer jwt"
    assert request.headers["Idempotency-Key"] == "x"
    assert json.loads(request.content)["trigger_in"] == 2


async def test_async_client_on_an_injected_http_client_adds_its_credentials() -> None:
    seen: list[httpx.Request] = []
    async with httpx.AsyncClient(base_url="http://api", transport=_echo(seen)) as http:
        async with AsyncRemindersClient(api_key="key", http=http) as client:
            assert (await client.get(RID)).status == "pending"
        assert not http.is_closed  # its owner closes it
    assert seen[0].headers["X-API-Key"] == "key"
    assert seen[0].url.path == f"/reminders/{RID}"


async def test_async_client_raises_typed_errors() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        del request
        return httpx.Response(404, json={"detail": "reminder not found"})

    async with AsyncRemindersClient("http://api", transport=httpx.MockTransport(handle)) as client:
        with pytest.raises(NotFound) as caught:
            await client.cancel(RID)
    assert caught.value.detail == "reminder not found"


def test_from_env_reads_the_variables_the_examples_document(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDERS_API_URL", "http://reminders:9000")
    monkeypatch.setenv("REMINDERS_API_KEY", "rmd_env")
    with RemindersClient.from_env() as client:
        assert str(client.http.base_url) == "http://reminders:9000"
        assert client.http.headers["X-API-Key"] == "rmd_env"
    assert env_settings("http://given", "k") == ("http://given", "k")
    monkeypatch.delenv("REMINDERS_API_URL")
    assert env_settings(None, None)[0] == "http://127.0.0.1:8000"


class OneEventQueue:
    """Just enough of redis.asyncio.Redis for one ``Consumer.process_one``."""

    def __init__(self, raw: bytes) -> None:
        self.items = [raw]

    async def blmove(self, *args: object) -> bytes | None:
        del args
        return self.items.pop() if self.items else None

    async def lrem(self, *args: object) -> int:
        del args
        return 1


async def test_the_consumer_of_a_client_acks_with_its_credentials() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"event_id": str(RID), "state": "acked", "reminder": reminder_json()})

    event = {"event_id": str(RID), "attempt": 1, "payload": {"reminder_id": str(RID)}}
    async with httpx.AsyncClient(base_url="http://api", transport=httpx.MockTransport(handle)) as http:
        client = AsyncRemindersClient(token="jwt", http=http)
        queue = cast(redis.Redis, OneEventQueue(json.dumps(event).encode()))

        async def complete(event: dict[str, Any]) -> HandlerResult:
            del event
            return HandlerResult(action="complete")

        assert await client.consumer(queue, complete, "unit").process_one()
    assert seen[0].headers["Authorization"] == "Bearer jwt"
    assert json.loads(seen[0].content)["action"] == "complete"
