"""Real Postgres and Redis for the tests: the system ones if REMINDERS_* URLs are set, else embedded.

Each test gets a fresh database cloned from a migrated template (cheap), and an empty Redis db.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as redis

from core import migrate
from core.db import Pool, create_pool
from core.embedded.postgres import with_database
from core.settings import Settings
from tests.factories import TEST_PAYLOAD_KEY

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_API_KEY = "test-admin-key"


@dataclass(frozen=True)
class ServiceUrls:
    """Where the test servers are; ``database_url`` points at the server's admin database."""

    database_url: str
    redis_url: str


@pytest.fixture(scope="session")
def service_urls() -> Iterator[ServiceUrls]:
    """Configured servers, or embedded ones started for this session."""
    database_url = os.environ.get("REMINDERS_DATABASE_URL")
    redis_url = os.environ.get("REMINDERS_REDIS_URL")
    # One folder per session, so two test runs at once never share (or stop) each other's servers.
    root = PROJECT_ROOT / ".data" / "test-services"
    root.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="session-", dir=root))
    with contextlib.ExitStack() as started:
        started.callback(shutil.rmtree, data, ignore_errors=True)
        if not database_url:
            from core.embedded import start_postgres

            database_url = started.enter_context(start_postgres(data / "postgres")).url
        if not redis_url:
            from core.embedded import start_redis

            redis_url = started.enter_context(start_redis(data / "redis")).url
        yield ServiceUrls(database_url, redis_url)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_database(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database migrated to head once per session, cloned by every test."""
    name = f"reminders_tpl_{uuid.uuid4().hex[:12]}"
    await _admin(service_urls.database_url, f'CREATE DATABASE "{name}"')
    url = with_database(service_urls.database_url, name)
    await asyncio.to_thread(migrate.upgrade, url)
    try:
        yield name
    finally:
        await _admin(service_urls.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(service_urls: ServiceUrls, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test alone."""
    name = f"reminders_t_{uuid.uuid4().hex[:12]}"
    await _admin(service_urls.database_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield with_database(service_urls.database_url, name)
    finally:
        await _admin(service_urls.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def redis_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """The test Redis, emptied before the test."""
    client = redis.from_url(service_urls.redis_url)
    await client.flushdb()
    await client.aclose()
    yield service_urls.redis_url


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    """Settings pointing at this test's database and Redis, with fast ticks."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        bootstrap_api_key=TEST_API_KEY,
        payload_keys=TEST_PAYLOAD_KEY,
        poll_interval=0.2,
        sweep_after=1.0,
        log_format="json",
        log_level="WARNING",
    )


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[Pool]:
    """An asyncpg pool on this test's database."""
    pool = await create_pool(settings, application_name="tests")
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    """A Redis client on the emptied test Redis."""
    client = redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
