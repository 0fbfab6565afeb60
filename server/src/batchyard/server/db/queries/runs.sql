-- name: insert_runs
-- Batch submit in one statement: a row per element of the arrays, its spec, and the
-- distinct configurations (:config_ids, :configs, :sealed_secrets; an id is a keyed digest
-- of the content, so one already stored is kept). A request_id already
-- used in the workspace inserts nothing (idempotent submit); only runs inserted get a spec.
-- :run_config_ids is each run's config id, :payloads its payload (parallel to :ids).
-- A configuration already stored is locked, not written (DO UPDATE ... WHERE false), so
-- retention cannot collect it while this submit is referring to it (retention.sql,
-- lock_configs).
WITH configs AS (
    INSERT INTO run_configs (id, config, sealed_secrets)
    SELECT DISTINCT ON (u.id) u.id, u.config, u.sealed_secrets
    FROM unnest(:config_ids::bytea[], :configs::jsonb[], :sealed_secrets::bytea[])
         AS u(id, config, sealed_secrets)
    ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id WHERE false
), ins AS (
    INSERT INTO runs (id, workspace_id, definition_id, definition_name, definition_version,
                      request_id, queue, priority, status, reason, payload_size)
    SELECT u.id, :workspace_id, u.definition_id, u.definition_name, u.definition_version,
           u.request_id, u.queue, u.priority, 'PENDING', 'RECENTLY_SUBMITTED', u.payload_size
    FROM unnest(:ids::uuid[], :definition_ids::uuid[], :definition_names::text[],
                :definition_versions::bigint[], :request_ids::text[], :queues::text[],
                :priorities::integer[], :payload_sizes::bigint[])
         AS u(id, definition_id, definition_name, definition_version, request_id, queue,
              priority, payload_size)
    ON CONFLICT (workspace_id, request_id) WHERE request_id IS NOT NULL DO NOTHING
    RETURNING id, submitted_at
), specs AS (
    INSERT INTO run_specs (run_id, config_id, payload)
    SELECT s.id, s.config_id, s.payload
    FROM unnest(:ids::uuid[], :run_config_ids::bytea[], :payloads::bytea[])
         AS s(id, config_id, payload)
    WHERE s.id IN (SELECT id FROM ins)
)
SELECT id, submitted_at FROM ins;

-- name: run_ids_by_request_id
SELECT request_id, id FROM runs WHERE workspace_id = $1 AND request_id = ANY($2::text[]);

-- name: get_runs
SELECT r.id, w.name AS workspace, r.definition_id, r.definition_name, r.definition_version,
       r.request_id, r.status, r.reason, r.message, r.cancel_requested, r.progress,
       r.num_retries_used, r.num_infra_retries_used, r.payload_size,
       r.available_at, r.submitted_at, r.started_at,
       r.ended_at, r.revision, c.config, c.sealed_secrets,
       r.parent_id, r.array_index, r.array_size, r.dependencies_waiting, r.schedule_id,
       r.schedule_fire_time, r.tasks
FROM runs r
JOIN workspaces w ON w.id = r.workspace_id
JOIN run_specs s ON s.run_id = r.id
JOIN run_configs c ON c.id = s.config_id
WHERE r.workspace_id = $1 AND r.id = ANY($2::uuid[]);

-- name: get_attempts
SELECT run_id, number, worker_id, started_at, ended_at, status, reason, exit_code, message,
       peak_memory_bytes, cpu_usec, retry_budget
FROM run_attempts
WHERE run_id = ANY($1::uuid[])
ORDER BY run_id, number;

-- name: list_runs
-- Newest first, keyset paging on (submitted_at, id).
-- Every filter is NULL for none; after (:after_submitted, :after_id).
SELECT r.id
FROM runs r
WHERE r.workspace_id = :workspace_id
  AND (:definition_id::uuid IS NULL OR r.definition_id = :definition_id::uuid)
  AND (:definition_name::text IS NULL OR r.definition_name = :definition_name::text)
  AND (:statuses::text[] IS NULL OR r.status = ANY(:statuses::text[]))
  AND (:submitted_from::timestamptz IS NULL OR r.submitted_at >= :submitted_from::timestamptz)
  AND (:submitted_to::timestamptz IS NULL OR r.submitted_at < :submitted_to::timestamptz)
  AND (:queue::text IS NULL OR r.queue = :queue::text)
  AND (:after_submitted::timestamptz IS NULL
       OR (r.submitted_at, r.id) < (:after_submitted::timestamptz, :after_id::uuid))
  -- Array runs (db/run_graph.py): children only when asked, or of one parent; a parent
  -- shows as PENDING until a child starts, then RUNNING.
  AND (:parent_id::uuid IS NULL OR r.parent_id = :parent_id::uuid)
  AND (:include_children::boolean OR :parent_id::uuid IS NOT NULL OR r.parent_id IS NULL)
  AND (:statuses::text[] IS NULL OR r.status <> 'ARRAY'
       OR (CASE WHEN EXISTS (SELECT 1 FROM runs c WHERE c.parent_id = r.id
                             AND (c.started_at IS NOT NULL OR c.ended_at IS NOT NULL))
                THEN :array_running::boolean ELSE :array_pending::boolean END))
  AND (:schedule_id::uuid IS NULL OR r.schedule_id = :schedule_id::uuid)
ORDER BY r.submitted_at DESC, r.id DESC
LIMIT :limit;

-- name: cancel_pending_run
UPDATE runs
SET status = 'CANCELLED', reason = 'CANCELLED_BY_USER', message = $3,
    ended_at = clock_timestamp(), revision = revision + 1
WHERE workspace_id = $1 AND id = $2 AND status = 'PENDING'
RETURNING id;

-- name: request_cancel
-- The run is still running until its job stops: its message says the cancel is asked
-- for ("cancel requested by user: …"), and becomes "cancelled by user: …" when it ends
-- (set_run_after_attempt), so status and message agree at every moment.
UPDATE runs
SET cancel_requested = true,
    message = regexp_replace($3, '^cancelled by user', 'cancel requested by user'),
    revision = revision + 1
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

-- name: run_payload
-- The payload a run was submitted with.
SELECT s.payload
FROM run_specs s JOIN runs r ON r.id = s.run_id
WHERE r.workspace_id = :workspace AND r.id = :run;
