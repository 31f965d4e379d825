-- Rows the poller cannot read (a value asyncpg cannot turn into Python) are set aside by SQL,
-- which can still compare them: a finite time before year 1 or from year 10000 on (PostgreSQL
-- keeps 4713 BC to 294276 AD; Python's datetime, years 1 to 9999). Used only after a fetch failed.

-- name: quarantine_unreadable_due
-- Of the batch claim_due would lock now (due against $1 or the database clock, the $2 first,
-- SKIP LOCKED), the rows holding a time Python cannot decode: quarantined at once, so claim_due,
-- run again in the same transaction, no longer returns them. -infinity is decoded (and then
-- quarantined by the plan); +infinity is never due. The caller audits each.
WITH batch AS (
    SELECT id, next_run_at, until, created_at
    FROM reminders
    WHERE status IN ('pending', 'active') AND next_run_at <= coalesce($1::timestamptz, now())
    ORDER BY next_run_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), unreadable AS (
    SELECT id FROM batch
    WHERE (isfinite(next_run_at) AND next_run_at < '0001-01-01 00:00:00+00')
       OR (isfinite(until) AND (until < '0001-01-01 00:00:00+00' OR until >= '10000-01-01 00:00:00+00'))
       OR (isfinite(created_at)
           AND (created_at < '0001-01-01 00:00:00+00' OR created_at >= '10000-01-01 00:00:00+00'))
)
UPDATE reminders AS r
SET status = 'quarantined', updated_at = now()
FROM unreadable AS u
WHERE r.id = u.id
RETURNING r.id;

-- name: quarantine_unreadable_delivering
-- Reminders with deliveries still to push, redeliver or dead-letter whose created_at (the one
-- reminder time those pushes read) Python cannot decode: quarantined, so the sweep and the
-- redelivery claim skip them. Not an indexed predicate: run only after such a fetch failed.
UPDATE reminders AS r
SET status = 'quarantined', updated_at = now()
WHERE r.status NOT IN ('cancelled', 'quarantined')
  AND isfinite(r.created_at)
  AND (r.created_at < '0001-01-01 00:00:00+00' OR r.created_at >= '10000-01-01 00:00:00+00')
  AND EXISTS (
      SELECT 1 FROM deliveries AS d
      WHERE d.reminder_id = r.id
        AND (d.state = 'pending'
             OR (d.state = 'sent' AND d.next_attempt_at IS NOT NULL)
             OR (d.state = 'dead' AND d.dead_lettered_at IS NULL))
  )
RETURNING r.id;

-- name: quarantine_delivering
-- Reminders ($1) whose deliveries the sweep or the redelivery claim could not rebuild (a payload
-- no key decrypts): quarantined unless cancelled, so those paths skip them; their deliveries stay
-- as they are, for a repair. Returns those it moved; the caller audits them.
UPDATE reminders SET status = 'quarantined', updated_at = now()
WHERE id = ANY($1::uuid[]) AND status NOT IN ('cancelled', 'quarantined')
RETURNING id;
