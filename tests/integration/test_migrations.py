"""The schema comes from alembic alone, and migrations run up and down cleanly."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from core import migrate
from core.embedded.postgres import with_database
from core.schema import metadata
from tests.conftest import ServiceUrls
from tests.factories import insert_reminder

TABLES = {"reminders", "deliveries", "audit_log", "api_keys", "idempotency_keys", "assistant_live_counts"}


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows} - {"alembic_version"}
    finally:
        await conn.close()


async def test_up_down_up_on_empty_database(service_urls: ServiceUrls) -> None:
    admin = await asyncpg.connect(service_urls.database_url)
    await admin.execute('CREATE DATABASE "reminders_migration_test"')
    url = with_database(service_urls.database_url, "reminders_migration_test")
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _tables(url) == TABLES
        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _tables(url) == set()
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _tables(url) == TABLES
    finally:
        await admin.execute('DROP DATABASE IF EXISTS "reminders_migration_test" WITH (FORCE)')
        await admin.close()


async def test_migrated_schema_matches_table_metadata(database_url: str) -> None:
    engine = create_async_engine(migrate.sqlalchemy_url(database_url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_due_index_is_partial_on_claimable_rows(pool: asyncpg.Pool) -> None:
    definition = await pool.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'reminders_due_idx'")
    assert "(next_run_at)" in definition
    assert "WHERE" in definition and "pending" in definition and "active" in definition


async def test_0011_stops_what_cancels_of_older_releases_let_through(database_url: str) -> None:
    await asyncio.to_thread(migrate.downgrade, database_url, "0010")
    conn = await asyncpg.connect(database_url)
    try:
        now = datetime.now(UTC)
        cancelled = await insert_reminder(conn, next_run_at=now)
        active = await insert_reminder(conn, next_run_at=now)
        await conn.execute("UPDATE reminders SET status = 'cancelled' WHERE id = $1", cancelled)
        rows = [
            (cancelled, 0, "pending", None),
            (cancelled, 1, "sent", now),
            (active, 0, "pending", None),
            (active, 1, "sent", now),
        ]
        for reminder_id, day, state, next_attempt_at in rows:
            await conn.execute(
                "INSERT INTO deliveries (event_id, reminder_id, scheduled_for, attempt, state,"
                " next_attempt_at) VALUES ($1, $2, $3, 2, $4, $5)",
                uuid.uuid4(),
                reminder_id,
                now - timedelta(days=day),
                state,
                next_attempt_at,
            )
        await asyncio.to_thread(migrate.upgrade, database_url)
        after = await conn.fetch(
            "SELECT reminder_id, state, next_attempt_at IS NOT NULL AS armed FROM deliveries"
            " ORDER BY reminder_id = $1 DESC, scheduled_for DESC",
            cancelled,
        )
        assert [(r["state"], r["armed"]) for r in after] == [
            ("stopped", False),
            ("sent", False),
            ("pending", False),
            ("sent", True),
        ]
    finally:
        await conn.close()
