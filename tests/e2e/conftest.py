"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.stack import running_stack


@pytest.fixture
async def api_url(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """The API and one poller, started as `make run` starts them, on this test's services."""
    async with running_stack(database_url, redis_url, tmp_path) as stack:
        yield stack.url
