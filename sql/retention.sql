-- Retention: what `reminders prune` deletes. Each statement is a short transaction of its own,
-- so a prune can run beside the service and stop at any point.

-- name: prune_idempotency_keys
-- Up to $1 idempotency keys past their 24 hours: claim_idempotency_key replaces such an entry
-- anyway, so deleting it changes no answer. Rows a create holds are skipped.
DELETE FROM idempotency_keys
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM idempotency_keys
    WHERE created_at < now() - interval '24 hours'
    ORDER BY created_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
));

-- name: relation_blocks
-- How many heap blocks table $1 has now (rows added later land beyond, and are newer anyway).
SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint;

-- name: prune_deliveries
-- Finished deliveries created more than $1 days ago, in heap blocks [$2, $3): acked, sent with
-- no ack due (next_attempt_at NULL), stopped, or dead and already in the dead-letter list. A TID range
-- scan: deliveries have no index by age (one would cost every fire an index entry), so a prune
-- reads the table once, a slice per statement, and never holds many row locks.
DELETE FROM deliveries
WHERE ctid >= format('(%s,0)', $2::bigint)::tid
  AND ctid < format('(%s,0)', $3::bigint)::tid
  AND created_at < now() - make_interval(days => $1::int)
  AND (state IN ('acked', 'stopped')
       OR (state = 'sent' AND next_attempt_at IS NULL)
       OR (state = 'dead' AND dead_lettered_at IS NOT NULL));

-- name: prune_audit_log
-- Audit entries older than $1 days among the $2 oldest with an id above $3. Ids grow with time,
-- so the walk stops at the first slice that holds a newer entry (kept = true): the scan never
-- reads the part of the log that stays. Returns the slice's last id and what was deleted.
WITH slice AS (
    SELECT id, at FROM audit_log WHERE id > $3 ORDER BY id LIMIT $2
), gone AS (
    DELETE FROM audit_log a USING slice s
    WHERE a.id = s.id AND s.at < now() - make_interval(days => $1::int)
    RETURNING a.id
)
SELECT (SELECT max(id) FROM slice) AS last_id,
       (SELECT count(*) FROM gone) AS deleted,
       EXISTS (SELECT 1 FROM slice WHERE at >= now() - make_interval(days => $1::int)) AS kept;

-- name: try_prune_lock
-- One prune at a time across pollers and `reminders prune`: a session lock, so a prune that dies
-- with its connection frees it.
SELECT pg_try_advisory_lock(hashtextextended('reminders prune', 0));

-- name: prune_unlock
SELECT pg_advisory_unlock(hashtextextended('reminders prune', 0));
