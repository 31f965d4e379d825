"""Each assistant's live reminders, counted by triggers, so the create can enforce the cap exactly.

The cap used to be a count of the assistant's live rows read before the insert (reused for a while
by each API process): concurrent creates all read the same count and all passed (200 live under a
cap of 20). Now ``assistant_live_counts`` holds the number of live (pending, active, paused) rows
of each assistant, kept exact by statement-level triggers on ``reminders`` (INSERT, UPDATE, DELETE,
TRUNCATE). The insert's trigger also checks the cap an optimistic create gives it (the setting
``reminders.live_cap``), under the counter row's lock; a create past the cap runs again locking its
assistants' counters first (sql/reminders.sql, create_reminders; docs/design.md, "The live cap").

Statement-level, with transition tables, rather than a row trigger: a claim that completes one-time
reminders of several assistants changes several counters in one statement; a row trigger would
lock them in row order, and two pollers (or a poller and a create) would deadlock. One upsert per
statement, in assistant order, never does; it also costs one counter write per assistant, not per
row. A statement that changes no row's liveness (every recurring fire) writes nothing.

The triggers are created before the backfill, in the migration's transaction: CREATE TRIGGER locks
out writers to ``reminders`` until the commit, so no create slips in between count and trigger.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# Frozen here (a migration must not change when core/states.py does): the live statuses of 0012.
_LIVE = "status IN ('pending', 'active', 'paused')"

_FUNCTION = f"""
CREATE FUNCTION count_live_reminders() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    most bigint;
    cap bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM assistant_live_counts;
    ELSIF TG_OP = 'INSERT' THEN
        WITH counted AS (
            INSERT INTO assistant_live_counts AS c (assistant_id, live)
            SELECT assistant_id, count(*) FROM new_rows WHERE {_LIVE}
            GROUP BY assistant_id ORDER BY assistant_id
            ON CONFLICT (assistant_id) DO UPDATE SET live = c.live + EXCLUDED.live
            RETURNING c.live
        )
        SELECT max(live) INTO most FROM counted;
        -- Set by an optimistic create (create_reminders): checked here, under the counter's lock.
        cap := nullif(current_setting('reminders.live_cap', true), '')::bigint;
        IF cap > 0 AND most > cap THEN
            RAISE EXCEPTION 'an assistant would have more than % live reminders', cap
                USING ERRCODE = 'check_violation', CONSTRAINT = 'assistant_live_cap';
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO assistant_live_counts AS c (assistant_id, live)
        SELECT assistant_id, -count(*) FROM old_rows WHERE {_LIVE}
        GROUP BY assistant_id ORDER BY assistant_id
        ON CONFLICT (assistant_id) DO UPDATE SET live = c.live + EXCLUDED.live;
    ELSE
        -- Each row counts -1 as it was and +1 as it is, when live: most updates sum to nothing.
        INSERT INTO assistant_live_counts AS c (assistant_id, live)
        SELECT assistant_id, sum(change) FROM (
            SELECT assistant_id, -1 AS change FROM old_rows WHERE {_LIVE}
            UNION ALL
            SELECT assistant_id, 1 FROM new_rows WHERE {_LIVE}
        ) AS d
        GROUP BY assistant_id HAVING sum(change) <> 0 ORDER BY assistant_id
        ON CONFLICT (assistant_id) DO UPDATE SET live = c.live + EXCLUDED.live;
    END IF;
    RETURN NULL;
END
$$
"""

_TRIGGERS = (
    "CREATE TRIGGER reminders_live_insert AFTER INSERT ON reminders"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_live_reminders()",
    "CREATE TRIGGER reminders_live_update AFTER UPDATE ON reminders"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_live_reminders()",
    "CREATE TRIGGER reminders_live_delete AFTER DELETE ON reminders"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_live_reminders()",
    "CREATE TRIGGER reminders_live_truncate AFTER TRUNCATE ON reminders"
    " FOR EACH STATEMENT EXECUTE FUNCTION count_live_reminders()",
)


def upgrade() -> None:
    op.execute(
        "CREATE TABLE assistant_live_counts ( assistant_id uuid PRIMARY KEY, live bigint NOT NULL DEFAULT 0)"
    )
    op.execute(_FUNCTION)
    for trigger in _TRIGGERS:
        op.execute(trigger)
    op.execute(
        "INSERT INTO assistant_live_counts (assistant_id, live)"
        f" SELECT assistant_id, count(*) FROM reminders WHERE {_LIVE} GROUP BY assistant_id"
    )


def downgrade() -> None:
    for name in ("insert", "update", "delete", "truncate"):
        op.execute(f"DROP TRIGGER reminders_live_{name} ON reminders")
    op.execute("DROP FUNCTION count_live_reminders()")
    op.execute("DROP TABLE assistant_live_counts")
