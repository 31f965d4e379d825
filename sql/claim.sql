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
-- In one statement: move each claimed reminder on ($1 ids, $2 next_run_at, $3 status, $4 how many
-- occurrences it sent), write one delivery per occurrence sent ($5 event ids, $6 reminder ids,
-- $7 scheduled_for, $8 late, $11 whether its reminder expects an ack), all at $9, and audit each
-- new one as a fire by actor $10. When $12 is true the events are already in Redis (pushed inside
-- this transaction) and the deliveries start as sent, with the redelivery time set as mark_sent
-- sets it for a first attempt (the ack timeout, $13 s, plus up to 20 % jitter); else they start
-- pending, for the caller or the sweep to push. The unique (reminder_id, scheduled_for) key stops
-- an occurrence from being recorded twice; RETURNING names the new deliveries, and only those are
-- audited, with the details $14 (aligned with $5). The details come built from Python: spelling
-- the time in SQL (to_char) cost PostgreSQL more per fire than parsing the JSON text does.
WITH moved AS (
    UPDATE reminders AS r
    SET next_run_at = f.next_run_at,
        status = f.status,
        last_triggered_at = CASE WHEN f.fired > 0 THEN $9 ELSE r.last_triggered_at END,
        runs_count = r.runs_count + f.fired,
        updated_at = $9
    FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::int[])
        AS f(id, next_run_at, status, fired)
    WHERE r.id = f.id
), recorded AS (
    INSERT INTO deliveries (event_id, reminder_id, scheduled_for, attempt, state, late, created_at,
                            updated_at, sent_at, next_attempt_at)
    SELECT o.event_id, o.reminder_id, o.scheduled_for, 1,
           CASE WHEN $12::bool THEN 'sent' ELSE 'pending' END, o.late, $9,
           CASE WHEN $12::bool THEN t.pushed ELSE $9 END,
           CASE WHEN $12::bool THEN t.pushed END,
           CASE WHEN $12::bool AND o.ack_required THEN
               t.pushed + make_interval(secs => $13::float8 * (1 + random() * 0.2))
           END
    FROM unnest($5::uuid[], $6::uuid[], $7::timestamptz[], $8::bool[], $11::bool[])
        AS o(event_id, reminder_id, scheduled_for, late, ack_required),
        -- Read once, after the push returned: the moment Redis is known to hold the events.
        (SELECT clock_timestamp() AS pushed) AS t
    ON CONFLICT DO NOTHING
    RETURNING event_id
), audited AS (
    INSERT INTO audit_log (actor, action, reminder_id, details)
    SELECT $10, 'fire', a.reminder_id, a.details
    FROM unnest($5::uuid[], $6::uuid[], $14::jsonb[]) AS a(event_id, reminder_id, details)
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
