-- The deliveries outbox: one row per occurrence, between Postgres and Redis.

-- name: lock_delivery
-- One delivery of one reminder, locked for an ack.
SELECT * FROM deliveries WHERE event_id = $1 AND reminder_id = $2 FOR UPDATE;

-- name: ack_delivery
-- Mark a delivery acknowledged by the assistant.
UPDATE deliveries SET state = 'acked', acked_at = now(), updated_at = now() WHERE event_id = $1;

-- name: mark_sent
-- Deliveries Redis confirmed; only pending ones move, so a late confirmation never undoes an ack.
UPDATE deliveries SET state = 'sent', sent_at = now(), updated_at = now()
WHERE event_id = ANY($1::uuid[]) AND state = 'pending';

-- name: stale_pending_deliveries
-- Deliveries recorded at least $1 seconds ago and still not confirmed by Redis (a poller died
-- between commit and push, or Redis was down): everything needed to push them again.
SELECT d.event_id, d.attempt, d.scheduled_for, d.created_at AS triggered_at,
       r.id AS reminder_id, r.assistant_id, r.user_id, r.type, r.payload, r.created_at
FROM deliveries d
JOIN reminders r ON r.id = d.reminder_id
WHERE d.state = 'pending' AND d.created_at <= now() - make_interval(secs => $1)
ORDER BY d.created_at
LIMIT $2;
