-- API keys: hashed secrets with scopes and the assistants they may act for.

-- name: insert_api_key
-- A new key; the caller made the secret and stores only its hash and display prefix.
INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, assistant_ids)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, name, prefix, scopes, assistant_ids, created_at, revoked_at;

-- name: api_keys_by_prefix
-- Live keys whose display prefix matches; the caller compares the hashes in constant time.
SELECT id, name, secret_hash, scopes, assistant_ids
FROM api_keys
WHERE prefix = $1 AND revoked_at IS NULL;

-- name: list_api_keys
-- Every key, newest first, without hashes.
SELECT id, name, prefix, scopes, assistant_ids, created_at, revoked_at
FROM api_keys
ORDER BY created_at DESC, id;

-- name: revoke_api_key
-- Revoke a key at once; returns it, or nothing if unknown or already revoked.
UPDATE api_keys SET revoked_at = now()
WHERE id = $1 AND revoked_at IS NULL
RETURNING id, name, prefix;
