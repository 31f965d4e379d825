-- The append-only audit trail.

-- name: insert_audit
-- Record one action (actor, action, reminder id, JSON details).
INSERT INTO audit_log (actor, action, reminder_id, details) VALUES ($1, $2, $3, $4::jsonb);

-- name: insert_audits
-- Record many actions at once ($1 actor; $2 actions, $3 reminder ids, $4 JSON details, aligned).
INSERT INTO audit_log (actor, action, reminder_id, details)
SELECT $1, a.action, a.reminder_id, a.details
FROM unnest($2::text[], $3::uuid[], $4::jsonb[]) AS a(action, reminder_id, details);

-- name: reminder_audit_page
-- One reminder's audit trail, newest first.
SELECT at, actor, action, details FROM audit_log
WHERE reminder_id = $1
ORDER BY at DESC, id DESC
LIMIT $2 OFFSET $3;

-- name: count_reminder_audit
-- How many audit rows one reminder has.
SELECT count(*) FROM audit_log WHERE reminder_id = $1;
