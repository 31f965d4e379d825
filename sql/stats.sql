-- The periodic counts behind the state gauges (core/stats.py) and the readiness check.

-- name: count_reminders
-- Reminders by status and type. A scan of the whole table: run every stats_interval, not per scrape.
SELECT status, type, count(*) AS n
FROM reminders
GROUP BY status, type;

-- name: due_backlog
-- Claimable reminders due against $1 (or the database clock when NULL), and the oldest one's time.
-- The predicate matches the partial index reminders_due_idx, so the cost follows the backlog only.
-- An infinite or BC next_run_at (written before the API refused such times, or by hand) is left
-- out of the oldest one's time, which Python could not hold: the poller quarantines that row at
-- its next claim.
SELECT count(*) AS due, min(next_run_at) FILTER (WHERE next_run_at >= '0001-01-01 00:00:00+00') AS oldest,
       coalesce($1::timestamptz, now()) AS db_now
FROM reminders
WHERE status IN ('pending', 'active') AND next_run_at <= coalesce($1::timestamptz, now());

-- name: count_deliveries
-- Deliveries by state. A scan of the whole table: run every stats_interval, not per scrape.
SELECT state, count(*) AS n
FROM deliveries
GROUP BY state;

-- name: table_sizes
-- Bytes on disk (indexes and TOAST included) of each table named in $1: catalog lookups, no scan.
-- For the reminders_table_bytes gauge and `reminders status`.
SELECT t AS name, coalesce(pg_total_relation_size(to_regclass(t)), 0) AS bytes
FROM unnest($1::text[]) AS t;

-- name: schema_versions
-- The revision(s) alembic recorded as applied, compared with the scripts' head for readiness.
SELECT version_num FROM alembic_version;
