"""The asyncpg pool: bounded, with server-side timeouts so no transaction lingers."""

from __future__ import annotations

import asyncpg

from core.settings import Settings

Pool = asyncpg.Pool


async def create_pool(settings: Settings, *, application_name: str) -> Pool:
    """A bounded pool against ``settings.database_url``; statements and idle transactions time out."""
    pool = await asyncpg.create_pool(
        settings.require_database_url(),
        min_size=min(settings.db_pool_min, settings.db_pool_max),
        max_size=settings.db_pool_max,
        timeout=settings.db_acquire_timeout,
        command_timeout=settings.db_statement_timeout_ms / 1000 or None,
        server_settings={
            "application_name": application_name,
            "statement_timeout": str(settings.db_statement_timeout_ms),
            # A claim transaction must stay short: kill it rather than hold back vacuum.
            "idle_in_transaction_session_timeout": str(settings.db_idle_in_transaction_timeout_ms),
            "timezone": "UTC",
        },
    )
    assert pool is not None
    return pool
