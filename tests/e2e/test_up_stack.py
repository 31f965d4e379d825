"""What a running `reminders up` (`make run`) leaves for the other commands and the examples, used as
a newcomer uses it: in another shell, with nothing exported (issue 17)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.e2e.stack import PROJECT_ROOT, free_port, running_up

pytestmark = pytest.mark.e2e
RUN_TIMEOUT = 30.0


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        yield holder.getsockname()[1]


def _bare_env(data_dir: Path) -> dict[str, str]:
    """A new shell's environment: no REMINDERS_* but where `make run` keeps its data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMINDERS_")}
    return env | {"REMINDERS_DATA_DIR": str(data_dir), "REMINDERS_LOG_FORMAT": "json"}


async def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, *argv], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=RUN_TIMEOUT,
    )  # fmt: skip


def _cli(*args: str) -> list[str]:
    return ["-c", "from cli.main import app; app()", *args]


async def test_the_commands_and_examples_find_a_running_up_with_keys_of_its_own(
    database_url: str, redis_url: str, tmp_path: Path, taken_port: int
) -> None:
    data_dir = tmp_path / "data"
    own_keys = ("REMINDERS_BOOTSTRAP_API_KEY", "REMINDERS_PAYLOAD_KEYS")  # up makes both, as on a fresh clone
    async with running_up(
        database_url, redis_url, data_dir, without=own_keys, REMINDERS_METRICS_PORT=str(taken_port)
    ) as stack:
        banner = stack.logs[0].read_text()
        # The poller cannot serve its metrics: the banner says so, and (below) the poller still fires.
        assert "Reminder Service is ready, but:" in banner
        assert f"warning: port {taken_port} on 127.0.0.1 is taken: poller-1 fires, but without" in banner
        env = _bare_env(data_dir)

        done = await _run(
            env, "examples/remind_me_in.py", "--in", "PT1S", "--text", "Stretch", "--timeout", "20"
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "status: completed"
        assert "@user123: reminder: Stretch" in done.stdout and not done.stderr

        done = await _run(env, *_cli("tail", "--payload", "--json", "--once", "--since", "5m"))
        assert done.returncode == 0, done.stderr
        (event,) = [orjson.loads(line) for line in done.stdout.splitlines()]
        assert event["payload"]["payload"]["text"] == "Stretch"  # decrypted with up's own key

        done = await _run(env, *_cli("rotate-payload-keys"))
        assert done.returncode == 0, done.stderr
        assert "every payload is under key" in done.stdout

        # Ctrl-C ends an example quietly, whatever it was waiting for.
        # As a terminal's Ctrl-C finds it: a test run started in the background (`make test &`,
        # nohup) has SIGINT ignored, the child would inherit that, and Python then leaves it so.
        example = subprocess.Popen(
            [sys.executable, "examples/remind_me_in.py", "--in", "PT1H"], env=env, cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            assert example.stdout is not None
            first = await asyncio.wait_for(asyncio.to_thread(example.stdout.readline), RUN_TIMEOUT)
            assert first.startswith("created "), first
            example.send_signal(signal.SIGINT)
            _, stderr = await asyncio.to_thread(example.communicate, timeout=RUN_TIMEOUT)
        finally:
            example.kill()
            example.communicate()  # reaps it and closes its pipes
        assert (example.returncode, stderr) == (130, "interrupted\n")


@pytest.mark.parametrize(
    ("exported", "missing"),
    [
        ({}, "REMINDERS_API_URL, REMINDERS_API_KEY, REMINDERS_REDIS_URL are not set"),
        (
            {"REMINDERS_API_URL": "http://127.0.0.1:9", "REMINDERS_API_KEY": "rmd_x"},
            "REMINDERS_REDIS_URL is not set",
        ),
    ],
)
@pytest.mark.parametrize("example", ["remind_me_in", "currency_monitor", "daily_check_in"])
async def test_an_example_without_its_settings_stops_and_names_them(
    tmp_path: Path, example: str, exported: dict[str, str], missing: str
) -> None:
    # No `make run` on this data dir, and not everything exported: no guessed localhost default.
    done = await _run(_bare_env(tmp_path) | exported, f"examples/{example}.py")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: {missing}, and no `reminders up` (`make run`) runs"), done.stderr
    assert "Traceback" not in done.stderr
