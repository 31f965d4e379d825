"""Waiting for the database at start: the backoff, and failure lines that never carry the password."""

from __future__ import annotations

import socket

import asyncpg
import orjson
import pytest

from core.db_wait import Backoff, Failure, database_target, until_connected, without_secret
from core.logging import configure_logging

# Every test here configures logging: put it back after each.
pytestmark = pytest.mark.usefixtures("restore_logging")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_backoff_doubles_up_to_its_cap_within_the_upper_half() -> None:
    backoff = Backoff(initial=0.5, cap=10.0)
    assert [backoff.delay(n, draw=lambda: 1.0) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [backoff.delay(n, draw=lambda: 0.0) for n in range(3)] == [0.25, 0.5, 1.0]
    assert backoff.delay(10_000) <= 10.0  # no overflow however long the outage


def test_target_names_where_without_secrets() -> None:
    url = "postgresql://app:s%3Acret@db.example:6543/reminders?sslpassword=hunter2&sslmode=require"
    assert database_target(url) == "app@db.example:6543/reminders"
    assert database_target("postgresql://[::1]/x") == "[::1]:5432/x"
    assert database_target("postgresql://h:notaport/x") == "(unparsable database URL)"


def test_secret_is_replaced_as_written_and_decoded() -> None:
    url = "postgresql://app:s%3Acret@db/reminders"
    assert without_secret("failed for s%3Acret and s:cret", url) == "failed for *** and ***"
    assert without_secret("no password here", "postgresql://app@db/x") == "no password here"


async def test_retries_with_backoff_until_connected() -> None:
    port = closed_port()
    url = f"postgresql://app:sekrit-pw@127.0.0.1:{port}/reminders"
    failures: list[Failure] = []
    slept: list[float] = []
    attempts = 0

    async def connect() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 4:  # a real refused connection, three times
            await asyncpg.connect(url, timeout=2)
        return "connected"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = await until_connected(
        connect, url, Backoff(1.0, 3.0), component="test", report=failures.append, sleep=sleep
    )
    assert result == "connected" and attempts == 4
    assert [f.attempt for f in failures] == [1, 2, 3]
    assert [f.retry_in for f in failures] == [round(s, 2) for s in slept]
    assert 0.5 <= slept[0] <= 1.0 and 1.0 <= slept[1] <= 2.0 and 1.5 <= slept[2] <= 3.0
    assert {f.target for f in failures} == {f"app@127.0.0.1:{port}/reminders"}
    assert "sekrit-pw" not in repr(failures)


async def test_each_failure_is_one_json_line_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    url = f"postgresql://app:sekrit-pw@127.0.0.1:{closed_port()}/reminders?password=sekrit-pw"
    tries = 0

    async def connect() -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            await asyncpg.connect(url, timeout=2)

    async def no_wait(_: float) -> None:
        pass

    await until_connected(connect, url, Backoff(), component="reminders-api", sleep=no_wait)
    err = capsys.readouterr().err
    assert "sekrit-pw" not in err
    failed, connected = (orjson.loads(line) for line in err.splitlines())
    assert failed["event"] == "database_unavailable" and failed["level"] == "warning"
    assert failed["component"] == "reminders-api" and failed["attempt"] == 1
    assert failed["error"].startswith(("ConnectionRefusedError", "OSError"))
    assert connected["event"] == "database_connected" and connected["attempts"] == 2


async def test_a_malformed_url_is_not_waited_for() -> None:
    async def connect() -> None:
        await asyncpg.connect("postgresql://app@127.0.0.1/x?sslmode=bogus")

    with pytest.raises(asyncpg.ClientConfigurationError):
        await until_connected(connect, "postgresql://app@127.0.0.1/x", Backoff(), component="test")
