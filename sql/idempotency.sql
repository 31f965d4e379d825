-- Idempotency keys of creates.

-- name: claim_idempotency_key
-- Take the key for this request ($1 credential, $2 key, $3 body hash, $4 the new reminder's id);
-- an entry older than 24 hours is replaced. A concurrent request with the same key waits here
-- until the first commits, then gets nothing back and reads the first one's entry.
INSERT INTO idempotency_keys AS k (credential_id, key, request_hash, reminder_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (credential_id, key) DO UPDATE
SET request_hash = EXCLUDED.request_hash, reminder_id = EXCLUDED.reminder_id, created_at = now()
WHERE k.created_at < now() - interval '24 hours'
RETURNING reminder_id;

-- name: get_idempotency_key
-- The entry a request with this key already made.
SELECT request_hash, reminder_id FROM idempotency_keys WHERE credential_id = $1 AND key = $2;
