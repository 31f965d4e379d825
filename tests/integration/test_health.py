"""/healthz and /readyz on the API and on a poller's own server: no credentials, 503 naming the culprit."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
import redis.asyncio as redis

from api.app import create_app
from core.db import Pool
from core.embedded.postgres import with_database
from core.metrics import CONTENT_TYPE, Metrics
from core.readiness import NOT_CONNECTED, check_readiness, migration_heads
from core.settings import Settings
from poller.main import Started, start_ops_server
from poller.ops import OpsApp, OpsServer
from poller.worker import Poller
from tests.conftest import TEST_API_KEY, ServiceUrls

pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with its lifespan run (its own pool and Redis client), and no credentials sent."""
    app = create_app(settings.model_copy(update={"stats_interval": 0.0}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        yield client


async def test_api_probes_answer_without_credentials(settings: Settings) -> None:
    async with running_api(settings) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        scrape = await client.get("/metrics")
        assert scrape.status_code == 200
        assert scrape.headers["content-type"] == CONTENT_TYPE


async def test_api_not_at_head_names_migrations(settings: Settings, pool: Pool) -> None:
    await pool.execute("UPDATE alembic_version SET version_num = 'feedbeef0000'")
    async with running_api(settings) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.json()
    assert list(body["checks"]) == ["migrations"]
    assert "feedbeef0000" in body["checks"]["migrations"]
    assert body["detail"] == "unavailable: migrations"


async def test_api_without_redis_names_redis(settings: Settings) -> None:
    no_redis = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed_port()}/0"})
    async with running_api(no_redis) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["checks"]) == ["redis"]


async def test_api_without_its_lifespan_is_not_ready(settings: Settings, pool: Pool) -> None:
    # The Redis client is opened by the lifespan: an app whose lifespan never ran cannot be ready.
    app = create_app(settings)
    app.state.pool = pool
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert list(response.json()["checks"]) == ["redis"]


async def test_readiness_reports_every_failing_check(pool: Pool) -> None:
    dead = redis.from_url(f"redis://127.0.0.1:{closed_port()}/0", socket_connect_timeout=1)
    try:
        problems = await check_readiness(pool, dead, frozenset({"not-the-head"}), timeout=2)
    finally:
        await dead.aclose()
    assert set(problems) == {"redis", "migrations"}


# -- a poller's own server ---------------------------------------------------------------------


async def test_ops_server_serves_metrics_and_probes_on_its_port(
    pool: Pool, redis_client: redis.Redis
) -> None:
    metrics = Metrics()
    metrics.fires.labels("one_time").inc(3)
    heads = migration_heads()
    server = OpsServer(OpsApp(metrics, lambda: check_readiness(pool, redis_client, heads)), "127.0.0.1", 0)
    await server.start()
    try:
        assert server.port != 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            scrape = await client.get("/metrics")
            assert scrape.headers["content-type"] == CONTENT_TYPE
            assert 'reminders_fires_total{type="one_time"} 3.0' in scrape.text
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            assert (await client.get("/elsewhere")).status_code == 404
            assert (await client.post("/metrics")).status_code == 405
    finally:
        await server.stop()


async def test_poller_readyz_turns_503_once_stopping(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    port = closed_port()
    poller = Poller(settings.model_copy(update={"metrics_port": port}), pool, redis_client)
    server = await start_ops_server(poller.settings, poller.metrics, Started(poller.redis, poller))
    assert server is not None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/readyz")).status_code == 200
            await poller.stop()
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"] == {"poller": "stopping"}
    finally:
        await server.stop()


async def test_poller_keeps_running_when_its_metrics_port_is_taken(
    settings: Settings, pool: Pool, redis_client: redis.Redis
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        poller = Poller(settings.model_copy(update={"metrics_port": port}), pool, redis_client)
        assert await start_ops_server(poller.settings, poller.metrics, Started(poller.redis, poller)) is None
    assert (
        poller.metrics.registry.get_sample_value(
            "reminders_errors_total", {"component": "poller", "kind": "ops_server"}
        )
        == 1.0
    )


# -- started while the database does not answer ---------------------------------------------------


async def test_api_started_without_its_database_listens_and_answers_503(settings: Settings) -> None:
    no_database = settings.model_copy(
        update={"database_url": f"postgresql://u:pw@127.0.0.1:{closed_port()}/x"}
    )
    async with running_api(no_database) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": NOT_CONNECTED}
        assert ready.headers["Retry-After"] == "5"
        for method, path in (
            ("POST", "/reminders/"),
            ("GET", "/reminders/scheduled"),
            ("GET", "/reminders/user/1"),
        ):
            answer = await client.request(method, path, headers={"X-API-Key": TEST_API_KEY})
            assert answer.status_code == 503, (method, path, answer.text)
            assert answer.headers["Retry-After"] == "5"
            assert "starting" in answer.json()["detail"]
            assert answer.headers["x-content-type-options"] == "nosniff"  # outer middleware ran
        assert (await client.get("/docs")).status_code == 200  # needs no database


async def test_api_with_a_malformed_database_url_still_fails_its_start(settings: Settings) -> None:
    # Not an outage: waiting would never help, so the start fails as before (uvicorn exits 3).
    malformed = settings.model_copy(update={"database_url": "postgresql://u@127.0.0.1/x?sslmode=bogus"})
    app = create_app(malformed)
    with pytest.raises(asyncpg.ClientConfigurationError):
        async with app.router.lifespan_context(app):
            pass


async def _execute(url: str, sql: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def test_api_serves_once_its_database_answers(
    settings: Settings, service_urls: ServiceUrls, template_database: str
) -> None:
    # A database the API cannot use at first (it does not exist yet), then can, with no restart.
    name = f"late_{uuid.uuid4().hex[:12]}"
    quick = {
        "database_url": with_database(service_urls.database_url, name),
        "db_connect_retry_max_delay": 0.5,
    }
    try:
        async with running_api(settings.model_copy(update=quick)) as client:
            assert (await client.get("/readyz")).json()["checks"] == {"database": NOT_CONNECTED}
            await _execute(
                service_urls.database_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'
            )
            for _ in range(50):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert (await client.get("/readyz")).status_code == 200
            listed = await client.get("/reminders/scheduled", headers={"X-API-Key": TEST_API_KEY})
            assert listed.status_code == 200, listed.text
    finally:
        await _execute(service_urls.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_poller_readyz_names_the_database_it_waits_for(
    settings: Settings, redis_client: redis.Redis
) -> None:
    port = closed_port()
    ops_settings = settings.model_copy(update={"metrics_port": port})
    server = await start_ops_server(ops_settings, Metrics(), Started(redis_client))
    assert server is not None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"] == {"database": NOT_CONNECTED}
    finally:
        await server.stop()


async def test_api_on_a_database_never_migrated_answers_503_saying_so(
    settings: Settings, service_urls: ServiceUrls
) -> None:
    name = f"bare_{uuid.uuid4().hex[:12]}"
    await _execute(service_urls.database_url, f'CREATE DATABASE "{name}"')
    bare = {"database_url": with_database(service_urls.database_url, name)}
    try:
        async with running_api(settings.model_copy(update=bare)) as client:
            assert "migrations" in (await client.get("/readyz")).json()["checks"]
            headers = {"X-API-Key": TEST_API_KEY}
            for response in (
                await client.get("/reminders/scheduled", headers=headers),
                await client.get(f"/reminders/{uuid.uuid4()}", headers=headers),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "5"
                assert "reminders migrate" in response.json()["detail"]
    finally:
        await _execute(service_urls.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
