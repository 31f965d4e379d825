-- Queries of the REST API on the reminders table.

-- name: insert_reminder
-- Store a new reminder; the caller computed status and next_run_at. The payload is stored only
-- encrypted ($9 the ciphertext, $15 the id of the key that made it); the plaintext column stays NULL.
-- $19, $20: the DST policy (dst_gap, dst_repeated).
INSERT INTO reminders (
    id, user_id, assistant_id, created_by_assistant_id, type, trigger_at, cron_expression,
    timezone, payload_ciphertext, status, next_run_at, misfire_policy, misfire_grace_seconds,
    ack_required, payload_key_id, start_at, until, max_runs, dst_gap, dst_repeated
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
RETURNING *;

-- name: create_reminders
-- New reminders, with their "create" audit rows, in one statement: atomic without BEGIN/COMMIT,
-- and one round trip and one commit for a whole batch of creates (api/batches.py). One array
-- per field of core/store/reminders.py's NewReminder, aligned; then, for the whole statement, the
-- live cap (0: none). A guess, when not NULL, is the moment next_run_at was computed from on the
-- API's clock, and the row is only written if that guess is right on the database's, i.e.
-- nothing fires between it and now() (guess <= now() < next_run_at).
-- The cap counts the assistant's live reminders in assistant_live_counts, which the insert's
-- trigger (migration 0012) updates under the counter row's lock, held until the commit. Told the
-- cap through the transaction's setting reminders.live_cap, the trigger fails the whole statement
-- (check_violation, assistant_live_cap) if an assistant would pass it: the caller then runs
-- create_reminders_within_cap. Concurrent creates of an assistant wait on each other only from the
-- trigger to the commit.
-- Returns the rows written; one with a wrong guess is missing.
WITH n AS (
    SELECT *
    FROM unnest(:id::uuid[], :user_id::bigint[], :assistant_id::uuid[],
                :created_by_assistant_id::uuid[], :type::text[], :trigger_at::timestamptz[],
                :cron_expression::text[], :timezone::text[], :payload_ciphertext::bytea[],
                :status::text[], :next_run_at::timestamptz[], :misfire_policy::text[],
                :misfire_grace_seconds::int[], :ack_required::bool[], :payload_key_id::text[],
                :start_at::timestamptz[], :until::timestamptz[], :max_runs::int[],
                :dst_gap::text[], :dst_repeated::text[], :actor::text[], :details::jsonb[],
                :guess::timestamptz[])
        AS n(id, user_id, assistant_id, created_by_assistant_id, type, trigger_at, cron_expression,
             timezone, payload_ciphertext, status, next_run_at, misfire_policy,
             misfire_grace_seconds, ack_required, payload_key_id, start_at, until, max_runs, dst_gap,
             dst_repeated, actor, details, guess)
    WHERE (n.guess IS NULL OR (n.guess <= now() AND n.next_run_at > now()))
      AND set_config('reminders.live_cap', :live_cap::int::text, true) IS NOT NULL
), r AS (
    INSERT INTO reminders (
        id, user_id, assistant_id, created_by_assistant_id, type, trigger_at, cron_expression,
        timezone, payload_ciphertext, status, next_run_at, misfire_policy, misfire_grace_seconds,
        ack_required, payload_key_id, start_at, until, max_runs, dst_gap, dst_repeated
    )
    SELECT id, user_id, assistant_id, created_by_assistant_id, type, trigger_at, cron_expression,
           timezone, payload_ciphertext, status, next_run_at, misfire_policy, misfire_grace_seconds,
           ack_required, payload_key_id, start_at, until, max_runs, dst_gap, dst_repeated
    FROM n
    RETURNING *
), audit AS (
    INSERT INTO audit_log (actor, action, reminder_id, details)
    SELECT n.actor, 'create', n.id, n.details FROM n
)
SELECT * FROM r;

-- name: create_reminders_within_cap
-- create_reminders where the cap (0: none) admits each row on its own: the counter rows of
-- the capped assistants are locked first (created on first use), in assistant order, and only the
-- rows that fit, in batch order, go in. Creates of one assistant take turns for the whole
-- statement, so this runs only when create_reminders was refused, or in a caller's transaction,
-- which a refused statement would abort. Returns the rows written; a refused one (over the cap,
-- or a wrong guess) is missing.
WITH n AS (
    SELECT *
    FROM unnest(:id::uuid[], :user_id::bigint[], :assistant_id::uuid[],
                :created_by_assistant_id::uuid[], :type::text[], :trigger_at::timestamptz[],
                :cron_expression::text[], :timezone::text[], :payload_ciphertext::bytea[],
                :status::text[], :next_run_at::timestamptz[], :misfire_policy::text[],
                :misfire_grace_seconds::int[], :ack_required::bool[], :payload_key_id::text[],
                :start_at::timestamptz[], :until::timestamptz[], :max_runs::int[],
                :dst_gap::text[], :dst_repeated::text[], :actor::text[], :details::jsonb[],
                :guess::timestamptz[])
        WITH ORDINALITY
        AS n(id, user_id, assistant_id, created_by_assistant_id, type, trigger_at, cron_expression,
             timezone, payload_ciphertext, status, next_run_at, misfire_policy,
             misfire_grace_seconds, ack_required, payload_key_id, start_at, until, max_runs, dst_gap,
             dst_repeated, actor, details, guess, place)
    WHERE n.guess IS NULL OR (n.guess <= now() AND n.next_run_at > now())
), counted AS (
    -- ON CONFLICT DO UPDATE locks the latest version, even one committed after this statement
    -- began (a plain SELECT ... FOR UPDATE would miss a row created meanwhile), and returns it.
    INSERT INTO assistant_live_counts AS c (assistant_id, live)
    SELECT DISTINCT assistant_id, 0 FROM n WHERE :live_cap::int > 0 ORDER BY assistant_id
    ON CONFLICT (assistant_id) DO UPDATE SET live = c.live
    RETURNING c.assistant_id, c.live
), admitted AS (
    SELECT n.* FROM (
        SELECT n.*, row_number() OVER (PARTITION BY n.assistant_id ORDER BY n.place) AS nth FROM n
    ) AS n
    LEFT JOIN counted ON counted.assistant_id = n.assistant_id
    WHERE :live_cap::int <= 0 OR counted.live + n.nth <= :live_cap::int
), r AS (
    INSERT INTO reminders (
        id, user_id, assistant_id, created_by_assistant_id, type, trigger_at, cron_expression,
        timezone, payload_ciphertext, status, next_run_at, misfire_policy, misfire_grace_seconds,
        ack_required, payload_key_id, start_at, until, max_runs, dst_gap, dst_repeated
    )
    SELECT id, user_id, assistant_id, created_by_assistant_id, type, trigger_at, cron_expression,
           timezone, payload_ciphertext, status, next_run_at, misfire_policy, misfire_grace_seconds,
           ack_required, payload_key_id, start_at, until, max_runs, dst_gap, dst_repeated
    FROM admitted
    RETURNING *
), audit AS (
    INSERT INTO audit_log (actor, action, reminder_id, details)
    SELECT admitted.actor, 'create', admitted.id, admitted.details FROM admitted
)
SELECT * FROM r;

-- name: get_reminder
-- One reminder by id.
SELECT * FROM reminders WHERE id = $1;

-- name: get_reminders
-- The reminders of these ids ($1) that exist: the reads of concurrent requests, batched.
SELECT * FROM reminders WHERE id = ANY($1::uuid[]);

-- name: lock_reminder
-- One reminder by id, locked for a state change in this transaction.
SELECT * FROM reminders WHERE id = $1 FOR UPDATE;

-- name: lock_reminder_status
-- Only what a cancel needs, locked: it works on a row whose times do not decode (written with SQL).
SELECT id, assistant_id, status FROM reminders WHERE id = $1 FOR UPDATE;

-- name: cancel_reminder
-- Cancel for good; returns nothing, so a row whose times do not decode can be cancelled too.
UPDATE reminders SET status = 'cancelled', next_run_at = NULL, updated_at = now() WHERE id = $1;

-- name: set_reminder_state
-- Change status and next fire; returns the new row.
UPDATE reminders
SET status = $2, next_run_at = $3, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: list_user_reminders
-- A page of one user's reminders, optionally filtered; $4 limits to some assistants (NULL = all).
SELECT * FROM reminders
WHERE user_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR type = $3)
  AND ($4::uuid[] IS NULL OR assistant_id = ANY($4))
ORDER BY created_at, id
LIMIT $5 OFFSET $6;

-- name: count_user_reminders
-- How many reminders list_user_reminders would page through.
SELECT count(*) FROM reminders
WHERE user_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR type = $3)
  AND ($4::uuid[] IS NULL OR assistant_id = ANY($4));

-- name: list_scheduled
-- The active schedule, soonest first; $1 limits to some assistants (NULL = all).
SELECT * FROM reminders
WHERE status IN ('pending', 'active') AND next_run_at IS NOT NULL
  AND ($1::uuid[] IS NULL OR assistant_id = ANY($1))
ORDER BY next_run_at, id
LIMIT $2 OFFSET $3;

-- name: count_scheduled
-- How many reminders list_scheduled would page through.
SELECT count(*) FROM reminders
WHERE status IN ('pending', 'active') AND next_run_at IS NOT NULL
  AND ($1::uuid[] IS NULL OR assistant_id = ANY($1));

-- name: db_now
-- The database clock, which every schedule computation is based on.
SELECT now();

-- name: count_payloads_to_rotate
-- How many reminders hold a payload not encrypted under key $1 (an older key, or plaintext).
SELECT count(*) FROM reminders WHERE payload_key_id IS DISTINCT FROM $1;

-- name: unknown_payload_key_ids
-- Key ids of stored payloads that are not in the key ring $1: those rows cannot be decrypted.
SELECT DISTINCT payload_key_id FROM reminders
WHERE payload_key_id IS NOT NULL AND NOT (payload_key_id = ANY($1::text[]))
ORDER BY payload_key_id;

-- name: lock_payloads_to_rotate
-- Up to $2 reminders whose payload is not under key $1, locked for re-encryption; rows another
-- transaction holds are skipped (the next run picks them up).
SELECT id, payload, payload_ciphertext FROM reminders
WHERE payload_key_id IS DISTINCT FROM $1
ORDER BY id
LIMIT $2
FOR UPDATE SKIP LOCKED;

-- name: store_rotated_payloads
-- Re-encrypted payloads ($1 ids, $2 ciphertexts) under key $3; the plaintext column is cleared.
UPDATE reminders AS r
SET payload_ciphertext = n.ciphertext, payload_key_id = $3, payload = NULL
FROM unnest($1::uuid[], $2::bytea[]) AS n(id, ciphertext)
WHERE r.id = n.id;

-- name: update_reminder_fields
-- Replace a reminder's editable fields and its next fire (the caller merged the change and
-- recomputed next_run_at in this transaction); the payload is stored only encrypted.
UPDATE reminders
SET trigger_at = $2, cron_expression = $3, timezone = $4, payload = NULL, payload_ciphertext = $5,
    payload_key_id = $6, misfire_policy = $7, misfire_grace_seconds = $8, ack_required = $9,
    until = $10, max_runs = $11, next_run_at = $12, dst_gap = $13, dst_repeated = $14, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: notify_due
-- Wake the pollers early for a reminder now due at $1 (its new next_run_at): NOTIFY reminders_due
-- with $1 as epoch seconds on this database's clock. Sent at commit, so a poller woken by it sees
-- the row; never sent if the transaction rolls back. Skipped when $1 is more than $2 seconds ahead:
-- a poller's regular tick plans a wake-up for any fire within one poll interval, so only nearer fires
-- need announcing, and every NOTIFY serialises commits server-wide (a global lock at commit).
SELECT pg_notify('reminders_due', extract(epoch FROM $1::timestamptz)::text)
WHERE $1::timestamptz < now() + make_interval(secs => $2::float8);
