-- The deliveries outbox: one row per occurrence, between Postgres and Redis.

-- name: lock_delivery
-- One delivery of one reminder, locked for an ack.
SELECT * FROM deliveries WHERE event_id = $1 AND reminder_id = $2 FOR UPDATE;

-- name: ack_delivery
-- Mark a delivery acknowledged by the assistant.
UPDATE deliveries SET state = 'acked', acked_at = now(), updated_at = now() WHERE event_id = $1;

-- name: mark_sent
-- Deliveries Redis confirmed ($1), each with whether its reminder expects an ack ($2, aligned);
-- only pending ones move, so a late confirmation never undoes an ack, nor a stop (a cancel, snooze
-- or completing ack moves pending deliveries to stopped). When an ack is expected, the redelivery
-- time is set: the ack timeout ($3 s) doubled per attempt already made, plus up to 20 % jitter so
-- a burst is not retried in lockstep; never for a cancelled reminder (a row re-armed by an older
-- release would otherwise keep it going). Called in the transaction that locked the deliveries
-- for their push (stale_pending_deliveries, claim_redeliveries), so no stop came in between.
-- Returns the deliveries it moved: those are the ones counted as fired or redelivered.
UPDATE deliveries AS d
SET state = 'sent',
    sent_at = now(),
    updated_at = now(),
    next_attempt_at = CASE WHEN s.ack_required AND r.status <> 'cancelled' THEN
        now() + make_interval(secs => $3 * power(2, d.attempt - 1) * (1 + random() * 0.2))
    END
FROM unnest($1::uuid[], $2::bool[]) AS s(event_id, ack_required), reminders AS r
WHERE d.event_id = s.event_id AND d.state = 'pending' AND r.id = d.reminder_id
RETURNING d.event_id;

-- name: stale_pending_deliveries
-- Deliveries due to be pushed at least $1 seconds ago and still not confirmed by Redis (Redis was
-- down at the claim or at a redelivery, or a poller died before confirming): everything needed to
-- push them again. Locked, SKIP LOCKED, for the caller's push and mark_sent in the same
-- transaction: a cancel or snooze stops pending deliveries (stop_redelivery) on the same rows, so
-- it either waits for that push or wins and nothing is pushed after it.
-- A quarantined reminder's are left for a repair (sql/quarantine.sql).
SELECT d.event_id, d.attempt, d.scheduled_for, d.late, d.created_at AS triggered_at,
       r.id AS reminder_id, r.assistant_id, r.user_id, r.type, r.payload,
       r.payload_ciphertext, r.created_at, r.ack_required
FROM deliveries d
JOIN reminders r ON r.id = d.reminder_id
WHERE d.state = 'pending' AND d.updated_at <= now() - make_interval(secs => $1)
  AND r.status NOT IN ('cancelled', 'quarantined')
ORDER BY d.created_at
LIMIT $2
FOR UPDATE OF d SKIP LOCKED;

-- name: claim_redeliveries
-- Up to $1 sent deliveries whose ack did not come in time: each goes back to pending with
-- attempt + 1, or, once it has had $2 attempts, becomes dead. Returns what is needed to push them.
-- The caller pushes the pending ones and runs mark_sent in this same transaction, holding the
-- rows: a cancel or snooze (stop_redelivery) waits for that push or, if it came first, left
-- nothing due. A cancelled reminder's rows are never taken (one re-armed by an older release),
-- nor a quarantined one's (its payload may not decrypt: sql/quarantine.sql).
WITH due AS (
    SELECT d.event_id FROM deliveries AS d
    JOIN reminders AS r ON r.id = d.reminder_id
    WHERE d.state = 'sent' AND d.next_attempt_at <= now()
      AND r.status NOT IN ('cancelled', 'quarantined')
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
), bumped AS (
    UPDATE deliveries AS d
    SET attempt = CASE WHEN d.attempt >= $2 THEN d.attempt ELSE d.attempt + 1 END,
        state = CASE WHEN d.attempt >= $2 THEN 'dead' ELSE 'pending' END,
        next_attempt_at = NULL,
        updated_at = now()
    FROM due
    WHERE d.event_id = due.event_id
    RETURNING d.event_id, d.reminder_id, d.attempt, d.state, d.scheduled_for, d.late,
              d.created_at AS triggered_at
)
SELECT b.event_id, b.reminder_id, b.attempt, b.state, b.scheduled_for, b.late, b.triggered_at,
       r.assistant_id, r.user_id, r.type, r.payload, r.payload_ciphertext, r.created_at, r.ack_required
FROM bumped AS b
JOIN reminders AS r ON r.id = b.reminder_id;

-- name: stale_dead_deliveries
-- Dead deliveries at least $1 seconds old whose event never reached the dead-letter list.
SELECT d.event_id, d.attempt, d.scheduled_for, d.late, d.created_at AS triggered_at,
       r.id AS reminder_id, r.assistant_id, r.user_id, r.type, r.payload,
       r.payload_ciphertext, r.created_at, r.ack_required
FROM deliveries d
JOIN reminders r ON r.id = d.reminder_id
WHERE d.state = 'dead' AND d.dead_lettered_at IS NULL AND r.status <> 'quarantined'
  AND d.updated_at <= now() - make_interval(secs => $1)
ORDER BY d.updated_at
LIMIT $2;

-- name: mark_dead_lettered
-- Dead deliveries whose event Redis confirmed in the dead-letter list; returns those it marked.
UPDATE deliveries SET dead_lettered_at = now()
WHERE event_id = ANY($1::uuid[]) AND state = 'dead' AND dead_lettered_at IS NULL
RETURNING event_id;

-- name: stop_redelivery
-- The reminder ended (cancelled or completed) or was snoozed: none of its events is pushed again.
-- Sent ones lose their redelivery time; pending ones (never confirmed by Redis: a redelivery or a
-- fire whose push failed, or whose poller died) become stopped. The pushes of pending deliveries
-- hold their rows locked until marked sent, so this waits for a push in flight (which then went
-- out before the cancel or snooze answered) and then stops its redelivery.
UPDATE deliveries
SET state = CASE WHEN state = 'pending' THEN 'stopped' ELSE state END,
    next_attempt_at = NULL,
    updated_at = now()
WHERE reminder_id = $1
  AND (state = 'pending' OR (state = 'sent' AND next_attempt_at IS NOT NULL));

-- name: reminder_deliveries_page
-- One reminder's deliveries (one per occurrence), newest first.
SELECT event_id, scheduled_for, attempt, state, late, created_at, sent_at, acked_at,
       next_attempt_at, dead_lettered_at
FROM deliveries
WHERE reminder_id = $1
ORDER BY scheduled_for DESC
LIMIT $2 OFFSET $3;

-- name: count_reminder_deliveries
-- How many deliveries one reminder has.
SELECT count(*) FROM deliveries WHERE reminder_id = $1;
