"""What the benchmarks share: the servers they run against, and throw-away databases on them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@contextlib.contextmanager
def postgres(database_url: str | None, data_dir: Path, log: Callable[[str], None]) -> Iterator[str]:
    """The PostgreSQL server URL: the given one, else an embedded server under ``data_dir/postgres``
    stopped on exit (unless it was already running: then it is someone else's to stop)."""
    if database_url:
        yield database_url
        return
    from core.embedded.postgres import start_postgres

    log(f"starting embedded PostgreSQL under {data_dir / 'postgres'}")
    server = start_postgres(data_dir / "postgres")
    try:
        yield server.url
    finally:
        if not server.adopted:
            server.stop()


@contextlib.contextmanager
def services(
    database_url: str | None, redis_url: str | None, data_dir: Path, log: Callable[[str], None]
) -> Iterator[tuple[str, str]]:
    """The (database, Redis) server URLs: the given ones, else embedded servers under ``data_dir``
    stopped on exit. Each benchmark passes its own ``data_dir``: two sharing one would stop each
    other's Redis."""
    with postgres(database_url, data_dir, log) as server_url:
        if redis_url:
            yield server_url, redis_url
            return
        from core.embedded.redis import start_redis

        log(f"starting embedded Redis under {data_dir / 'redis'}")
        redis_server = start_redis(data_dir / "redis")
        try:
            yield server_url, redis_server.url
        finally:
            redis_server.stop()


def with_database(url: str, name: str) -> str:
    """The same server URL with its database replaced by ``name``."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def database_name(url: str) -> str:
    """The database a URL names."""
    return urlsplit(url).path.lstrip("/")


async def admin(server_url: str, sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server's maintenance connection."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def stop_processes(
    children: Sequence[tuple[str, asyncio.subprocess.Process, IO[bytes]]],
    log: Callable[[str], None],
    grace: float = 30,
) -> None:
    """SIGTERM each (name, process, log file), kill whatever is still up after ``grace``, close the logs."""
    for _, process, _ in children:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for name, process, log_file in children:
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log(f"{name} ignored SIGTERM for {grace:.0f}s; killing it")
            process.kill()
            await process.wait()
        log_file.close()
