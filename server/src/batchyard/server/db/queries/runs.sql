-- name: insert_runs
-- Batch submit in one statement: a row per element of the arrays, its spec, and the
-- distinct configurations ($10 ids, $11 configs, $12 sealed secrets; an id is a keyed
-- digest of the content, so one already stored is kept). $2 is the workspace id. A request_id already
-- used in the workspace inserts nothing (idempotent submit); only runs inserted get a spec.
-- $13 is each run's config id, $14 its payload.
WITH configs AS (
    INSERT INTO run_configs (id, config, sealed_secrets)
    SELECT * FROM unnest($10::bytea[], $11::jsonb[], $12::bytea[])
    ON CONFLICT (id) DO NOTHING
), ins AS (
    INSERT INTO runs (id, workspace_id, definition_id, definition_name, definition_version,
                      request_id, queue, priority, status, reason, payload_size)
    SELECT u.id, $2, u.definition_id, u.definition_name, u.definition_version,
           u.request_id, u.queue, u.priority, 'PENDING', 'RECENTLY_SUBMITTED', u.payload_size
    FROM unnest($1::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                $8::integer[], $9::bigint[])
         AS u(id, definition_id, definition_name, definition_version, request_id, queue,
              priority, payload_size)
    ON CONFLICT (workspace_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
    RETURNING id, submitted_at
), specs AS (
    INSERT INTO run_specs (run_id, config_id, payload)
    SELECT s.id, s.config_id, s.payload
    FROM unnest($1::uuid[], $13::bytea[], $14::bytea[]) AS s(id, config_id, payload)
    WHERE s.id IN (SELECT id FROM ins)
)
SELECT id, submitted_at FROM ins;

-- name: run_ids_by_request_id
SELECT request_id, id FROM runs WHERE workspace_id = $1 AND request_id = ANY($2::text[]);

-- name: get_runs
SELECT r.id, w.name AS workspace, r.definition_id, r.definition_name, r.definition_version,
       r.request_id, r.status, r.reason, r.message, r.cancel_requested, r.progress,
       r.num_retries_used, r.payload_size, r.available_at, r.submitted_at, r.started_at,
       r.ended_at, r.revision, c.config, c.sealed_secrets
FROM runs r
JOIN workspaces w ON w.id = r.workspace_id
JOIN run_specs s ON s.run_id = r.id
JOIN run_configs c ON c.id = s.config_id
WHERE r.workspace_id = $1 AND r.id = ANY($2::uuid[]);

-- name: get_attempts
SELECT run_id, number, worker_id, started_at, ended_at, status, reason, exit_code, message
FROM run_attempts
WHERE run_id = ANY($1::uuid[])
ORDER BY run_id, number;

-- name: list_runs
-- Newest first, keyset paging on (submitted_at, id).
-- $1 workspace, $2 definition id, $3 definition name, $4 statuses, $5 from, $6 to,
-- $7/$8 after (submitted_at, id), $9 limit.
SELECT r.id
FROM runs r
WHERE r.workspace_id = $1
  AND ($2::uuid IS NULL OR r.definition_id = $2::uuid)
  AND ($3::text IS NULL OR r.definition_name = $3::text)
  AND ($4::text[] IS NULL OR r.status = ANY($4::text[]))
  AND ($5::timestamptz IS NULL OR r.submitted_at >= $5::timestamptz)
  AND ($6::timestamptz IS NULL OR r.submitted_at < $6::timestamptz)
  AND ($7::timestamptz IS NULL OR (r.submitted_at, r.id) < ($7::timestamptz, $8::uuid))
ORDER BY r.submitted_at DESC, r.id DESC
LIMIT $9;

-- name: cancel_pending_run
UPDATE runs
SET status = 'CANCELLED', reason = 'CANCELLED_BY_USER', message = $3,
    ended_at = clock_timestamp(), revision = revision + 1
WHERE workspace_id = $1 AND id = $2 AND status = 'PENDING'
RETURNING id;

-- name: request_cancel
UPDATE runs
SET cancel_requested = true, message = $3, revision = revision + 1
WHERE workspace_id = $1 AND id = $2 AND status = 'RUNNING' AND NOT cancel_requested
RETURNING id;

-- name: run_status
SELECT status FROM runs WHERE workspace_id = $1 AND id = $2;

-- name: delete_finished_run
-- The run, its spec, its log, its result listing and (by cascade) its attempts, in one
-- statement (the result files are removed from the artifact store after it).
WITH gone AS (
    DELETE FROM runs
    WHERE workspace_id = $1 AND id = $2 AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
    RETURNING id
), spec AS (
    DELETE FROM run_specs WHERE run_id IN (SELECT id FROM gone)
), logs AS (
    DELETE FROM run_log_chunks WHERE run_id IN (SELECT id FROM gone)
), results AS (
    DELETE FROM run_results WHERE run_id IN (SELECT id FROM gone)
)
SELECT id FROM gone;

-- name: notify_queues
-- Wake the lease long-polls of every server replica (payload "<sender>:<queue>").
SELECT pg_notify('batchyard_runs', $1::text || ':' || q) FROM unnest($2::text[]) AS q;
