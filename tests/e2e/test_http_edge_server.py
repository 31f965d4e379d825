"""The API's uvicorn, started as `reminders up` starts it, against hostile clients on raw sockets:
huge request heads (431), slow or silent connections (closed), no Server banner."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cli.up import api_command
from core.settings import Settings
from tests.e2e.stack import PROJECT_ROOT, free_port, service_env, wait_until_healthy

HEADER_TIMEOUT = 1.5


@pytest.fixture
async def server(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[int]:
    port = free_port()
    argv = api_command(Settings(api_port=port, log_level="WARNING", keep_alive_timeout=2))
    env = service_env(database_url, redis_url, REMINDERS_HEADER_TIMEOUT=str(HEADER_TIMEOUT))
    with (tmp_path / "api.log").open("wb") as log:
        proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            await wait_until_healthy(f"http://127.0.0.1:{port}")
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=15)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes, failing if that takes over ``seconds``."""
    return await asyncio.wait_for(reader.read(-1), seconds)


async def test_a_head_over_the_cap_in_many_reads_is_431(server: int) -> None:
    """The server reads such a head in pieces: each counts, the first included."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"q" * (36 * 1024) + b"\r\n\r\n"
    for start in range(0, len(head), 6 * 1024):
        writer.write(head[start : start + 6 * 1024])
        await writer.drain()
        await asyncio.sleep(0.05)  # one read per piece
    answer = await _closed_within(reader, 5)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    writer.close()


async def test_a_head_over_the_cap_is_431(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * (40 * 1024) + b"\r\n\r\n")
    await writer.drain()
    answer = await _closed_within(reader, 5)
    assert answer.startswith(b"HTTP/1.1 431 ")
    writer.close()


async def test_a_64_mib_header_does_not_stall_healthz(server: int) -> None:
    async def flood() -> bytes:
        """Send a 64 MiB header; what the server answered before it cut the connection."""
        reader, writer = await asyncio.open_connection("127.0.0.1", server)
        writer.write(b"GET /reminders/scheduled HTTP/1.1\r\nHost: x\r\nX-API-Key: ")
        with contextlib.suppress(ConnectionError):  # the server closes long before the end
            for _ in range(64):
                writer.write(b"k" * (1024 * 1024))
                await writer.drain()
        answer = b""
        with contextlib.suppress(ConnectionError):
            answer = await _closed_within(reader, 10)
        writer.close()
        return answer

    task = asyncio.create_task(flood())
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server}") as client:
        await asyncio.sleep(0.05)
        slowest = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert (await client.get("/healthz")).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
    # Refused at the cap (a 431, or a reset while the rest was still being sent), never read whole.
    answer = await asyncio.wait_for(task, 30)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert slowest < 0.5


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"])
async def test_a_head_that_does_not_arrive_in_time_is_dropped(server: int, sent: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(sent)
    started = time.monotonic()

    # Trickle a header byte every 0.2 s: each byte would reset uvicorn's keep-alive timer.
    async def trickle() -> None:
        while True:
            await asyncio.sleep(0.2)
            if sent:
                writer.write(b"X")

    dripping = asyncio.create_task(trickle())
    try:
        answer = await _closed_within(reader, HEADER_TIMEOUT + 3)
    finally:
        dripping.cancel()
    assert time.monotonic() - started < HEADER_TIMEOUT + 2
    assert answer.startswith(b"HTTP/1.1 408 ") if sent else answer == b""
    writer.close()


async def test_an_idle_keep_alive_is_closed_and_no_server_banner(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await _closed_within(reader, 2 + 3)  # keep_alive_timeout=2
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200 ")
    assert b"\r\nserver:" not in head
    assert b"x-content-type-options: nosniff" in head
    writer.close()
