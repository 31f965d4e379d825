-- The poller's hot path on the reminders table.

-- name: claim_due
-- Lock up to $2 due reminders (due against $1, or the database clock when $1 is NULL).
-- SKIP LOCKED lets any number of pollers claim side by side without waiting on each other;
-- the predicate matches the partial index reminders_due_idx.
SELECT id AS reminder_id, user_id, assistant_id, type, cron_expression, timezone, payload,
       payload_ciphertext, misfire_policy, misfire_grace_seconds, ack_required, created_at,
       until, max_runs, runs_count, dst_gap, dst_repeated, next_run_at AS scheduled_for, coalesce($1::timestamptz, now()) AS db_now
FROM reminders
WHERE status IN ('pending', 'active') AND next_run_at <= coalesce($1::timestamptz, now())
ORDER BY next_run_at
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: record_fires
-- In one statement: move each claimed reminder on (reminder_ids, with its next_run_at, status and
-- how many occurrences it sent, fired), write one delivery per occurrence sent (event_ids, with
-- the reminder, scheduled_for, late and whether its reminder expects an ack), all at fired_at,
-- and audit each new one as a fire by actor. When pushed is true the events are already in Redis
-- (pushed inside this transaction) and the deliveries start as sent, with the redelivery time set
-- as mark_sent sets it for a first attempt (ack_timeout seconds, plus up to 20 % jitter); else they
-- start pending, for the sweep to push. The unique (reminder_id, scheduled_for) key
-- stops an occurrence from being recorded twice; RETURNING names the new deliveries, and only
-- those are audited, with their fire_details (aligned with event_ids). The details come built
-- from Python: spelling the time in SQL (to_char) cost PostgreSQL more per fire than parsing the
-- JSON text does. Parameters: core/store/fires.py, RecordFires.
WITH moved AS (
    UPDATE reminders AS r
    SET next_run_at = f.next_run_at,
        status = f.status,
        last_triggered_at = CASE WHEN f.fired > 0 THEN :fired_at ELSE r.last_triggered_at END,
        runs_count = r.runs_count + f.fired,
        updated_at = :fired_at
    FROM unnest(:reminder_ids::uuid[], :next_run_at::timestamptz[], :status::text[], :fired::int[])
        AS f(id, next_run_at, status, fired)
    WHERE r.id = f.id
), recorded AS (
    INSERT INTO deliveries (event_id, reminder_id, scheduled_for, attempt, state, late, created_at,
                            updated_at, sent_at, next_attempt_at)
    SELECT o.event_id, o.reminder_id, o.scheduled_for, 1,
           CASE WHEN :pushed::bool THEN 'sent' ELSE 'pending' END, o.late, :fired_at,
           CASE WHEN :pushed::bool THEN t.pushed ELSE :fired_at END,
           CASE WHEN :pushed::bool THEN t.pushed END,
           CASE WHEN :pushed::bool AND o.ack_required THEN
               t.pushed + make_interval(secs => :ack_timeout::float8 * (1 + random() * 0.2))
           END
    FROM unnest(:event_ids::uuid[], :event_reminder_ids::uuid[], :scheduled_for::timestamptz[],
                :late::bool[], :ack_required::bool[])
        AS o(event_id, reminder_id, scheduled_for, late, ack_required),
        -- Read once, after the push returned: the moment Redis is known to hold the events.
        (SELECT clock_timestamp() AS pushed) AS t
    ON CONFLICT DO NOTHING
    RETURNING event_id
), audited AS (
    INSERT INTO audit_log (actor, action, reminder_id, details)
    SELECT :actor, 'fire', a.reminder_id, a.details
    FROM unnest(:event_ids::uuid[], :event_reminder_ids::uuid[], :fire_details::jsonb[])
        AS a(event_id, reminder_id, details)
    WHERE a.event_id IN (SELECT event_id FROM recorded)
)
SELECT event_id FROM recorded;

-- name: keep_first_triggered_at
-- Deliveries ($1) whose events a claim cut short between its push and its commit had pushed: their
-- created_at becomes the triggered_at those events carried ($2, aligned), the one every later
-- attempt repeats. Rare (a crash or a failed commit), so not folded into record_fires.
UPDATE deliveries AS d SET created_at = k.triggered_at
FROM unnest($1::uuid[], $2::timestamptz[]) AS k(event_id, triggered_at)
WHERE d.event_id = k.event_id;

-- name: next_due
-- The soonest upcoming fire and the database clock, to plan a precise wake-up. Times Python
-- cannot hold (infinite, before year 1, from year 10000) are no fire to wake for: a -infinity or
-- BC row is due now and quarantined by the next claim, and one past 9999 would fail this fetch.
SELECT min(next_run_at) AS next_run_at, now() AS db_now
FROM reminders
WHERE status IN ('pending', 'active')
  AND next_run_at >= '0001-01-01 00:00:00+00' AND next_run_at < '10000-01-01 00:00:00+00';

-- name: quarantine_reminders
-- Set aside claimed reminders ($1) the poller could not plan or encode, at $2: the status is
-- outside the due index, so no claim sees them again until an operator repairs them. The caller
-- audits each with its reason in the same transaction.
UPDATE reminders SET status = 'quarantined', updated_at = $2 WHERE id = ANY($1::uuid[]);
