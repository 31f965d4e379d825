"""The asyncpg pool: bounded, with server-side timeouts so no transaction lingers."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from core.settings import Settings

Pool = asyncpg.Pool
# One connection: on its own, or taken from a pool (a transaction's statements go through it).
Connection = asyncpg.Connection | PoolConnectionProxy
# What a lost, refused or failing database connection raises: the callers log, count and go on.
DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


async def _keep_session(conn: asyncpg.Connection) -> None:
    # asyncpg still rolls back a transaction left open, and drops listeners, before calling this.
    del conn


async def create_pool(settings: Settings, *, application_name: str, reset_sessions: bool = True) -> Pool:
    """A bounded pool against ``settings.database_url``; statements and idle transactions time out.

    ``reset_sessions=False`` skips asyncpg's session reset (``CLOSE ALL; UNLISTEN *; RESET ALL`` and
    advisory unlocks), a round trip on every release, i.e. one more per request: only for callers
    that never change session state on pooled connections (the API: plain statements and
    transactions, no SET beyond the transaction (create_reminders' set_config is local), no LISTEN,
    advisory locks or cursors).
    """
    pool = await asyncpg.create_pool(
        settings.require_database_url(),
        min_size=min(settings.db_pool_min, settings.db_pool_max),
        max_size=settings.db_pool_max,
        timeout=settings.db_acquire_timeout,
        reset=None if reset_sessions else _keep_session,
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
