-- The append-only audit trail.

-- name: insert_audit
-- Record one action (actor, action, reminder id, JSON details).
INSERT INTO audit_log (actor, action, reminder_id, details) VALUES ($1, $2, $3, $4::jsonb);
