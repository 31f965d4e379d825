"""The examples/ assistants, run as a newcomer runs them, against `reminders up` (what `make run` runs)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from client import AsyncRemindersClient, Reminder
from tests.conftest import TEST_API_KEY
from tests.e2e.stack import PROJECT_ROOT, running_up

pytestmark = pytest.mark.e2e


@pytest.fixture
async def up_url(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """`reminders up` on this test's services; its API's URL."""
    async with running_up(database_url, redis_url, tmp_path / "data") as stack:
        yield stack.url


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RUN_TIMEOUT = 20.0


async def run_example(name: str, api_url: str, redis_url: str, *args: str) -> tuple[int, list[str]]:
    """Run ``examples/<name>.py`` with the env vars its docstring tells users to export."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    env |= {"REMINDERS_API_URL": api_url, "REMINDERS_API_KEY": TEST_API_KEY, "REMINDERS_REDIS_URL": redis_url}
    argv = [sys.executable, str(PROJECT_ROOT / "examples" / f"{name}.py"), *args]
    done = await asyncio.to_thread(
        subprocess.run, argv, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    lines = done.stdout.splitlines()
    assert not done.stderr, done.stderr
    return done.returncode, lines


async def final_state(api_url: str, lines: list[str]) -> tuple[Reminder, list[str]]:
    """The reminder the example named in its first line, and its deliveries' states."""
    match = UUID_RE.search(lines[0])
    assert match, lines
    async with AsyncRemindersClient(api_url, api_key=TEST_API_KEY) as api:
        reminder = await api.get(match.group())
        history = await api.history(reminder.id, limit=100)
    return reminder, [d.state for d in history.deliveries.items]


async def test_remind_me_in(up_url: str, redis_url: str) -> None:
    code, lines = await run_example("remind_me_in", up_url, redis_url, "--in", "PT2S", "--timeout", "15")
    assert code == 0, lines
    assert "@user123: reminder: Meeting" in lines[1]
    assert lines[-1] == "status: completed"
    reminder, deliveries = await final_state(up_url, lines)
    assert reminder.status == "completed" and deliveries == ["acked"]


async def test_currency_monitor_ends_its_own_chain(up_url: str, redis_url: str) -> None:
    code, lines = await run_example("currency_monitor", up_url, redis_url, "--every", "1", "--timeout", "15")
    assert code == 0, lines
    # The fake rate goes 1.0, 1.02, 1.04, 1.06: the fourth check crosses 1.05 and completes the chain.
    assert [line.split(" = ")[1].split(",")[0] for line in lines[1:4]] == ["1.0", "1.02", "1.04"]
    assert lines[4] == "@user123: USD/EUR is 1.06, above 1.05"
    assert lines[-1] == "status: completed"
    reminder, deliveries = await final_state(up_url, lines)
    assert reminder.status == "completed" and reminder.runs_count >= 4
    assert deliveries == ["acked"] * len(deliveries) and len(deliveries) >= 4


async def test_daily_check_in_demo_schedule(up_url: str, redis_url: str) -> None:
    args = ["--every-seconds", "1", "--check-ins", "2", "--timeout", "15"]
    code, lines = await run_example("daily_check_in", up_url, redis_url, *args)
    assert code == 0, lines
    assert [line.split(", check-in ")[1][0] for line in lines[1:3]] == ["1", "2"]
    assert lines[-1] == "status: cancelled"  # the demo schedule is not left running
    reminder, deliveries = await final_state(up_url, lines)
    assert reminder.timezone == "Europe/Berlin" and reminder.cron_expression == "*/1 * * * * *"
    assert deliveries.count("acked") >= 2


async def test_daily_check_in_at_ten_in_the_users_zone(up_url: str, redis_url: str) -> None:
    args = ["--timezone", "America/New_York", "--timeout", "1"]
    code, lines = await run_example("daily_check_in", up_url, redis_url, *args)
    assert code == 0, lines
    assert lines[0].count("10:00:00 E") == 3  # EST or EDT
    assert lines[-1] == "status: active"  # a real daily check-in is kept
    reminder, _ = await final_state(up_url, lines)
    assert reminder.next_run_at is not None
    local: datetime = reminder.next_run_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, reminder.cron_expression) == (10, 0, "0 10 * * *")
