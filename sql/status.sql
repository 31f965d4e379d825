-- What `reminders status` and `reminders tail` read: counts and recent deliveries, never locking.

-- name: status_reminder_counts
-- Reminders per (status, type).
SELECT status, type, count(*) AS count
FROM reminders
GROUP BY status, type;

-- name: status_due_backlog
-- Reminders due now and not claimed yet, how long the oldest of them has waited (seconds), and the
-- database clock the snapshot is taken at; the predicate matches the partial index reminders_due_idx.
-- never_due counts the scheduled reminders whose next_run_at is +infinity or from year 10000 on
-- (written by hand or an older release): no claim ever takes them, and nothing else shows them
-- (the top end of the same index, so cheap).
SELECT now() AS db_now,
       count(*) AS due,
       extract(epoch FROM now() - min(next_run_at))::float8 AS oldest_due_age_seconds,
       (SELECT count(*) FROM reminders
        WHERE status IN ('pending', 'active') AND next_run_at >= '10000-01-01 00:00:00+00') AS never_due
FROM reminders
WHERE status IN ('pending', 'active') AND next_run_at <= now();

-- name: status_fire_lag
-- First pushes (attempt 1) sent in the last $1 seconds: how many, and the p99 of
-- sent_at - scheduled_for (seconds). A redelivered event has attempt > 1 and a later sent_at, so
-- it is left out rather than counted with its retry delay.
SELECT count(*) AS fired,
       percentile_cont(0.99) WITHIN GROUP (
           ORDER BY extract(epoch FROM sent_at - scheduled_for)
       )::float8 AS lag_p99_seconds
FROM deliveries
WHERE attempt = 1 AND sent_at >= now() - make_interval(secs => $1);

-- name: tail_sent_deliveries
-- Up to $3 deliveries pushed to the queue after the (sent_at, event_id) position ($1, $2), oldest
-- first. Acked (and later dead) deliveries keep their sent_at, so they count as pushed too. The
-- payload columns are NULL unless $4: the tail decrypts payloads only when asked to.
SELECT d.event_id, d.attempt, d.reminder_id, d.scheduled_for, d.sent_at, d.late,
       d.created_at AS triggered_at, r.assistant_id, r.user_id, r.type, r.created_at, r.ack_required,
       CASE WHEN $4::bool THEN r.payload END AS payload,
       CASE WHEN $4::bool THEN r.payload_ciphertext END AS payload_ciphertext
FROM deliveries d
JOIN reminders r ON r.id = d.reminder_id
WHERE d.sent_at IS NOT NULL AND (d.sent_at, d.event_id) > ($1::timestamptz, $2::uuid)
ORDER BY d.sent_at, d.event_id
LIMIT $3;
