"""The `reminders` CLI on the test Postgres and Redis: status, tail, api and poller."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as redis
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from cli.common import RUNNING_FILE
from cli.main import app
from cli.up import api_command
from core.crypto import PayloadCipher
from core.db import Pool
from core.redis_keys import DEAD_LETTER_QUEUE, EVENT_QUEUE, POLLER_HEARTBEATS
from core.retention import prune_lock
from core.settings import Settings
from poller.worker import Poller
from tests.conftest import PROJECT_ROOT
from tests.factories import TEST_PAYLOAD_KEY, insert_reminder, payload_cipher

CLI_TIMEOUT = 60.0


def _env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """Our environment without any REMINDERS_* of the runner's, plus the test's URLs and key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    if settings is not None:
        env.update(
            REMINDERS_DATABASE_URL=settings.require_database_url(),
            REMINDERS_REDIS_URL=settings.require_redis_url(),
            REMINDERS_PAYLOAD_KEYS=TEST_PAYLOAD_KEY,
        )
    env.update(REMINDERS_LOG_LEVEL="WARNING", REMINDERS_LOG_FORMAT="json", **extra)
    return env


async def _start(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import app; app()", *args,
        cwd=PROJECT_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """Wait for ``process`` (killed if it overruns) and return its code, stdout and stderr."""
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=CLI_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await _finish(await _start(env, *args))


async def _status(settings: Settings) -> dict[str, Any]:
    code, stdout, stderr = await _run_cli(_env(settings), "status", "--json")
    assert code == 0, stderr
    status: dict[str, Any] = orjson.loads(stdout)
    return status


async def test_status_json_counts_reminders_queues_pollers_and_fire_lag(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    await insert_reminder(pool, next_run_at=now - timedelta(seconds=10))
    assert await Poller(settings, pool, redis_client).poll() == 1  # fired 10 s late: pending -> active
    for _ in range(2):
        await insert_reminder(pool, next_run_at=now - timedelta(seconds=5))  # due, not claimed
    await insert_reminder(pool, next_run_at=now + timedelta(hours=1), cron_expression="0 10 * * *")
    await insert_reminder(pool, next_run_at=now + timedelta(hours=1))
    await redis_client.rpush(EVENT_QUEUE, b"{}", b"{}")
    await redis_client.rpush(DEAD_LETTER_QUEUE, b"{}")
    await redis_client.zadd(POLLER_HEARTBEATS, {"poller-live": time.time(), "poller-gone": time.time() - 120})

    status = await _status(settings)

    by_type = status["reminders"]["by_status_and_type"]
    assert by_type["pending"] == {"one_time": 3, "recurring": 0}
    assert by_type["active"] == {"one_time": 1, "recurring": 1}
    assert status["reminders"]["by_status"] == {
        "pending": 3, "active": 2, "paused": 0, "completed": 0, "cancelled": 0, "quarantined": 0,
    }  # fmt: skip
    assert status["reminders"]["total"] == 5
    assert status["due_backlog"] == 2
    assert 5 <= status["oldest_due_age_seconds"] < CLI_TIMEOUT + 5
    assert status["queue"] == {"name": EVENT_QUEUE, "length": 3}  # the fired event and two more
    assert status["dead_letter"] == {"name": DEAD_LETTER_QUEUE, "length": 1}
    # Pollers may write heartbeats of their own: only ours are known here.
    seen = {p["id"] for p in status["pollers"]["seen"]}
    assert "poller-live" in seen and "poller-gone" not in seen
    assert status["pollers"]["count"] == len(seen)
    assert status["fire_lag"]["fired"] == 1
    assert 10 <= status["fire_lag"]["p99_seconds"] < CLI_TIMEOUT + 10
    # Sizes from the catalog, indexes included: every table has at least its primary key's pages.
    sizes = status["table_bytes"]
    assert list(sizes) == ["reminders", "deliveries", "audit_log", "idempotency_keys"]
    assert all(isinstance(size, int) and size >= 8192 for size in sizes.values()), sizes
    assert sizes["reminders"] == await pool.fetchval("SELECT pg_total_relation_size('reminders')")


async def test_status_on_an_empty_service_and_as_a_table(settings: Settings) -> None:
    status = await _status(settings)
    assert status["reminders"]["total"] == 0
    assert (status["due_backlog"], status["oldest_due_age_seconds"]) == (0, None)
    assert status["fire_lag"] == {"window_seconds": 300.0, "fired": 0, "p99_seconds": None}
    assert status["pollers"]["count"] == 0

    code, stdout, stderr = await _run_cli(_env(settings, COLUMNS="160"), "status")
    assert code == 0, stderr
    for label in (
        "pending", "recurring", "due now, not claimed", EVENT_QUEUE, DEAD_LETTER_QUEUE, "p99", "on disk",
    ):  # fmt: skip
        assert label in stdout


async def test_status_without_a_database_url_says_what_to_set(tmp_path: Path) -> None:
    # An empty data dir: no `reminders up` running there to fall back on.
    code, stdout, stderr = await _run_cli(_env(REMINDERS_DATA_DIR=str(tmp_path)), "status")
    assert (code, stdout) == (1, "")
    assert "REMINDERS_DATABASE_URL is not set" in stderr and "Traceback" not in stderr


async def test_status_finds_the_servers_of_a_running_up(settings: Settings, tmp_path: Path) -> None:
    # What `reminders up` leaves in its data dir while it runs (cli/up.py _announce).
    urls = {"database_url": settings.require_database_url(), "redis_url": settings.require_redis_url()}
    (tmp_path / RUNNING_FILE).write_bytes(orjson.dumps(urls))
    code, stdout, stderr = await _run_cli(_env(REMINDERS_DATA_DIR=str(tmp_path)), "status", "--json")
    assert code == 0, stderr
    assert orjson.loads(stdout)["reminders"]["total"] == 0


async def test_tail_shows_an_event_even_when_a_consumer_pops_it_at_once(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1), payload='{"n":1}')
    tail = await _start(_env(settings), "tail", "--json", "--payload", "--limit", "1", "--interval", "0.1")
    try:
        assert tail.stderr is not None
        line = await asyncio.wait_for(tail.stderr.readline(), timeout=CLI_TIMEOUT)
        assert b"following events pushed since" in line, line
        assert await Poller(settings, pool, redis_client).poll() == 1
        pushed = await redis_client.lpop(EVENT_QUEUE)  # a consumer takes it before the tail could
        assert isinstance(pushed, bytes)
    finally:
        code, stdout, stderr = await _finish(tail)
    assert code == 0, stderr
    (shown,) = stdout.splitlines()
    assert orjson.loads(shown) == orjson.loads(pushed)  # the same event, payload decrypted


async def test_tail_since_lists_past_events_once_without_decrypting(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    now = datetime.now(UTC)
    reminders = [await insert_reminder(pool, next_run_at=now - timedelta(seconds=s)) for s in (3, 2)]
    assert await Poller(settings, pool, redis_client).poll() == 2
    await redis_client.delete(EVENT_QUEUE)  # consumed: the tail does not need the list
    # One batch shares one sent_at: the tail orders such events by id.
    deliveries = await pool.fetch("SELECT event_id, reminder_id FROM deliveries ORDER BY sent_at, event_id")

    code, stdout, stderr = await _run_cli(_env(settings), "tail", "--since", "5m", "--once")
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == 2
    assert {d["reminder_id"] for d in deliveries} == set(reminders)
    for line, delivery in zip(lines, deliveries, strict=True):
        assert str(delivery["event_id"]) in line and f"reminder={delivery['reminder_id']}" in line
        assert "user=123" in line and "late=no" in line and "payload" not in line

    code, stdout, stderr = await _run_cli(_env(settings), "tail", "--since", "5m", "--once", "--json")
    assert code == 0, stderr
    events = [orjson.loads(line) for line in stdout.splitlines()]
    assert [e["event_id"] for e in events] == [str(d["event_id"]) for d in deliveries]
    assert all(e["payload"]["payload"] is None for e in events)  # not decrypted without --payload

    code, stdout, stderr = await _run_cli(_env(settings), "tail", "--once")
    assert (code, stdout) == (0, ""), stderr  # from now on: nothing yet


async def test_poller_command_fires_due_reminders_until_sigterm(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    await insert_reminder(pool, next_run_at=datetime.now(UTC) - timedelta(seconds=1))
    # The REST sync has no API to reach here; a closed port makes it fail fast and quietly retry.
    env = _env(settings, REMINDERS_POLL_INTERVAL="0.2", REMINDERS_API_URL="http://127.0.0.1:9")
    poller = await _start(env, "poller")
    try:
        deadline = time.monotonic() + CLI_TIMEOUT
        while await redis_client.llen(EVENT_QUEUE) == 0:
            assert poller.returncode is None, "the poller exited"
            assert time.monotonic() < deadline, "the poller fired nothing"
            await asyncio.sleep(0.1)
        poller.send_signal(signal.SIGTERM)
    finally:
        code, _, stderr = await _finish(poller)
    assert code == 0, stderr
    assert await pool.fetchval("SELECT state FROM deliveries") == "sent"


async def test_rotate_payload_keys_shows_its_progress_on_stderr(settings: Settings, pool: Pool) -> None:
    for _ in range(3):
        await insert_reminder(pool, next_run_at=datetime.now(UTC) + timedelta(hours=1))
    new_key = Fernet.generate_key().decode()
    env = _env(settings, REMINDERS_PAYLOAD_KEYS=f"{new_key},{TEST_PAYLOAD_KEY}")
    code, stdout, stderr = await _run_cli(env, "rotate-payload-keys", "--batch-size", "2")
    assert code == 0, stderr
    new_key_id = PayloadCipher([new_key]).key_id
    assert f"re-encrypting under key {new_key_id}" in stderr and "3/3" in stderr  # the finished bar
    assert stdout.strip() == f"re-encrypted 3 payloads; every payload is under key {new_key_id}"
    stored = {row[0] for row in await pool.fetch("SELECT DISTINCT payload_key_id FROM reminders")}
    assert stored == {new_key_id} != {payload_cipher().key_id}


async def test_prune_takes_its_retention_from_the_settings_or_the_command_line(
    settings: Settings, pool: Pool
) -> None:
    await pool.execute(
        """
        INSERT INTO deliveries (event_id, reminder_id, scheduled_for, state, created_at)
        SELECT gen_random_uuid(), gen_random_uuid(), now(), 'acked', now() - d * interval '1 day'
        FROM unnest(ARRAY[5, 15, 40]) AS d
        """
    )
    await pool.execute(
        "INSERT INTO audit_log (at, actor, action) VALUES (now() - interval '3 days', 'test', 'create')"
    )

    env = _env(settings, REMINDERS_DELIVERY_RETENTION_DAYS="20")
    code, stdout, stderr = await _run_cli(env, "prune", "--json")
    assert code == 0, stderr
    assert orjson.loads(stdout) == {"idempotency_keys": 0, "deliveries": 1, "audit_entries": 0}

    code, stdout, stderr = await _run_cli(env, "prune", "--deliveries-days", "10", "--audit-days", "1")
    assert code == 0, stderr
    assert stdout.strip() == (
        "deleted 0 expired idempotency keys, 1 finished delivery (older than 10 days), "
        "1 audit entry (older than 1 day)"
    )
    assert await pool.fetchval("SELECT count(*) FROM deliveries") == 1

    code, _, stderr = await _run_cli(env, "prune", "--audit-days", "-1")
    assert code == 2 and "--audit-days" in stderr

    async with prune_lock(pool):  # a poller's prune, say
        code, stdout, stderr = await _run_cli(env, "prune")
    assert (code, stdout) == (75, "") and "another prune" in stderr, stderr


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for command in ("up", "api", "poller", "status", "tail", "keys", "rotate-payload-keys", "prune"):
        assert f" {command} " in result.output


def test_api_execs_the_same_uvicorn_command_as_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("REMINDERS_")]:
        monkeypatch.delenv(name)
    for name, value in {
        "REMINDERS_DATABASE_URL": "postgresql://db.invalid/reminders",
        "REMINDERS_PAYLOAD_KEYS": TEST_PAYLOAD_KEY,
        "REMINDERS_API_PORT": "8123",
        "REMINDERS_TLS_CERTFILE": "/etc/reminders/cert.pem",
        "REMINDERS_TLS_KEYFILE": "/etc/reminders/key.pem",
    }.items():
        monkeypatch.setenv(name, value)
    execs: list[list[str]] = []
    # Replacing the test process with uvicorn would end the run: record the call instead.
    monkeypatch.setattr(os, "execve", lambda _path, argv, _env: execs.append(list(argv)))

    result = CliRunner().invoke(app, ["api"])

    assert result.exit_code == 0, result.output
    assert execs == [api_command(Settings())]
    assert execs[0][-4:] == [
        "--ssl-certfile",
        "/etc/reminders/cert.pem",
        "--ssl-keyfile",
        "/etc/reminders/key.pem",
    ]
    assert "8123" in execs[0]


def test_api_and_poller_run_with_the_servers_of_a_running_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The URLs `reminders api` and `reminders poller` take from a running `up` reach the code they start."""
    for name in [k for k in os.environ if k.startswith("REMINDERS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REMINDERS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REMINDERS_PAYLOAD_KEYS", TEST_PAYLOAD_KEY)
    urls = {"database_url": "postgresql://db.invalid:5999/up", "redis_url": "redis://redis.invalid:6999/0"}
    (tmp_path / RUNNING_FILE).write_bytes(orjson.dumps(urls))
    envs: list[dict[str, str]] = []
    monkeypatch.setattr(os, "execve", lambda _path, _argv, env: envs.append(dict(env)))
    started: list[Settings] = []
    monkeypatch.setattr("cli.main.run_poller", started.append)

    assert CliRunner().invoke(app, ["api"]).exit_code == 0
    assert CliRunner().invoke(app, ["poller"]).exit_code == 0

    # uvicorn's app reads its settings from the environment it is given.
    for name, value in envs[0].items():
        monkeypatch.setenv(name, value)
    assert (Settings().database_url, Settings().redis_url) == (urls["database_url"], urls["redis_url"])
    assert [(s.database_url, s.redis_url) for s in started] == [(urls["database_url"], urls["redis_url"])]


def test_api_without_payload_keys_fails_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("REMINDERS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REMINDERS_DATABASE_URL", "postgresql://db.invalid/reminders")
    monkeypatch.setattr(os, "execve", lambda _path, _argv, _env: pytest.fail("uvicorn started"))
    result = CliRunner().invoke(app, ["api"])
    assert result.exit_code == 1
    assert "REMINDERS_PAYLOAD_KEYS is not set" in result.stderr
