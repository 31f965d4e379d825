"""Chaos 8: `reminders up` on a PostgreSQL of its own that is down waits for it, then starts everything.

`up` migrates before it starts the API and the pollers; with ``REMINDERS_DATABASE_URL`` pointing at
a server that does not answer yet it must say so and retry, not fail, and go on once it answers.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import pytest

from tests.chaos.harness import API_KEY, ChaosCluster, ServiceProcess, free_port

pytestmark = pytest.mark.chaos

DOWN_S = 3.0
WAITING_TIMEOUT_S = 20.0
READY_TIMEOUT_S = 40.0


@pytest.mark.timeout(120)
async def test_up_waits_for_its_database(chaos: ChaosCluster) -> None:
    await chaos.stop_postgres()
    env = chaos.service_env(
        REMINDERS_API_PORT=str(free_port()),
        REMINDERS_DATA_DIR=str(chaos.folder / "up"),
        REMINDERS_POLLERS="1",
        REMINDERS_BOOTSTRAP_API_KEY=API_KEY,
        REMINDERS_LOG_LEVEL="INFO",
    )
    del env["REMINDERS_API_URL"]  # the pollers read the API `up` starts
    up = ServiceProcess(
        name="up",
        args=[sys.executable, "-c", "from cli.main import app; app()", "up"],
        env=env,
        log_path=chaos.logs / "up.log",
    )
    up.start()
    try:
        # At least DOWN_S, and until up said it waits (a loaded machine may take seconds to start it).
        started, log = time.monotonic(), ""
        while time.monotonic() - started < DOWN_S or "waiting for PostgreSQL at" not in log:
            log = up.log_path.read_text()
            assert up.alive(), f"reminders up exited while PostgreSQL was down:\n{log}"
            assert time.monotonic() - started < WAITING_TIMEOUT_S, f"up did not say it waits:\n{log}"
            await asyncio.sleep(0.2)
        assert "retrying in" in log and "Reminder Service is ready" not in log, log

        await chaos.start_postgres()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "Reminder Service is ready" not in up.log_path.read_text():
            assert up.alive(), up.log_path.read_text()
            assert time.monotonic() < deadline, f"not ready {READY_TIMEOUT_S}s after PostgreSQL returned"
            await asyncio.sleep(0.2)
    finally:
        code = await up.stop(signal.SIGINT)  # Ctrl-C: up stops its children, then exits 0
    assert code == 0, up.log_path.read_text()
