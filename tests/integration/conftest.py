"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from api.app import create_app
from core.db import Pool
from core.settings import Settings
from tests.conftest import TEST_API_KEY


@asynccontextmanager
async def api_client(settings: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API with ``settings``, in-process on ``pool``, authenticated with the admin test key."""
    app = create_app(settings)
    app.state.pool = pool  # the lifespan is not run by the ASGI transport; share the test pool
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api", headers={"X-API-Key": TEST_API_KEY}
    ) as client:
        yield client


@pytest.fixture
async def api(settings: Settings, pool: Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process on this test's pool, authenticated with the admin test key."""
    async with api_client(settings, pool) as client:
        yield client
