"""Fixtures of the chaos suite: each test gets servers of its own, never the shared test servers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.chaos.harness import ChaosCluster


@pytest.fixture
async def chaos(request: pytest.FixtureRequest) -> AsyncIterator[ChaosCluster]:
    """A fresh Postgres (migrated) and Redis under ``.data/chaos/<test-name>/``; all stopped after.

    Pollers and the API are started by the test through the cluster, which stops them (and kills
    any straggler) at teardown; the folder with its logs stays until the next run of the test.
    """
    cluster = await ChaosCluster.create(request.node.name)
    try:
        yield cluster
    finally:
        await cluster.close()
