-- name: retention_policies_of
-- The workspace's policy (definition_id NULL) and its definitions' overrides.
SELECT definition_id, keep_seconds, keep_succeeded, keep_failed, audit_keep_seconds
FROM retention_policies
WHERE workspace_id = $1;

-- name: put_retention_policy
INSERT INTO retention_policies (workspace_id, definition_id, keep_seconds, keep_succeeded,
                                keep_failed, audit_keep_seconds)
VALUES (:workspace_id, :definition_id, :keep_seconds, :keep_succeeded, :keep_failed,
        :audit_keep_seconds)
ON CONFLICT (workspace_id, COALESCE(definition_id, '00000000-0000-0000-0000-000000000000'))
DO UPDATE SET keep_seconds = EXCLUDED.keep_seconds, keep_succeeded = EXCLUDED.keep_succeeded,
              keep_failed = EXCLUDED.keep_failed,
              audit_keep_seconds = EXCLUDED.audit_keep_seconds;

-- name: workspaces_with_policies
SELECT DISTINCT workspace_id FROM retention_policies;

-- name: definitions_of_workspace
SELECT id FROM definitions WHERE workspace_id = $1;

-- name: runs_ended_before
-- Finished runs of a workspace that ended before :cutoff; :definition_id NULL: of every
-- definition except :excluded (those with their own period) and ad-hoc runs.
SELECT id FROM runs
WHERE workspace_id = :workspace_id
  AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
  AND ended_at < :cutoff
  AND (CASE WHEN :definition_id::uuid IS NULL
            THEN definition_id IS NULL OR definition_id <> ALL(:excluded::uuid[])
            ELSE definition_id = :definition_id::uuid END)
LIMIT :limit;

-- name: runs_beyond_latest
-- A definition's runs in :statuses past the latest :keep (by submission), oldest kept last.
SELECT id FROM runs
WHERE definition_id = :definition_id AND status = ANY(:statuses::text[])
ORDER BY submitted_at DESC, id DESC
OFFSET :keep
LIMIT :limit;

-- name: runs_matching
-- DeleteRuns: finished runs of a workspace by filter (NULL: any).
SELECT id FROM runs
WHERE workspace_id = :workspace_id
  AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')  -- the partial index on ended_at
  AND status = ANY(:statuses::text[])
  AND (:definition_id::uuid IS NULL OR definition_id = :definition_id::uuid)
  AND (:definition_name::text IS NULL OR definition_name = :definition_name::text)
  AND (:schedule_id::uuid IS NULL OR schedule_id = :schedule_id::uuid)
  AND ended_at < :ended_before
ORDER BY ended_at
LIMIT :limit;

-- name: count_runs_matching
SELECT count(*) FROM runs
WHERE workspace_id = :workspace_id
  AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')  -- the partial index on ended_at
  AND status = ANY(:statuses::text[])
  AND (:definition_id::uuid IS NULL OR definition_id = :definition_id::uuid)
  AND (:definition_name::text IS NULL OR definition_name = :definition_name::text)
  AND (:schedule_id::uuid IS NULL OR schedule_id = :schedule_id::uuid)
  AND ended_at < :ended_before;

-- name: delete_runs_batch
-- Finished runs with their spec, log, result listing, attempts (by cascade) and the
-- schedule fires that name them, in one short statement. Rows another transaction holds
-- are skipped (a later pass takes them). Returns what was deleted, the configurations
-- they used and the runs that had result files.
WITH victims AS (
    SELECT id FROM runs
    WHERE id = ANY($1::uuid[]) AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM runs WHERE id IN (SELECT id FROM victims) RETURNING id
), spec AS (
    DELETE FROM run_specs WHERE run_id IN (SELECT id FROM gone) RETURNING config_id
), logs AS (
    DELETE FROM run_log_chunks WHERE run_id IN (SELECT id FROM gone)
), results AS (
    DELETE FROM run_results WHERE run_id IN (SELECT id FROM gone) RETURNING run_id
), fires AS (
    DELETE FROM schedule_fires WHERE run_id IN (SELECT id FROM gone)
)
SELECT coalesce((SELECT array_agg(id) FROM gone), '{}') AS runs,
       coalesce((SELECT array_agg(DISTINCT config_id) FROM spec), '{}') AS configs,
       coalesce((SELECT array_agg(DISTINCT run_id) FROM results), '{}') AS with_results;

-- name: lock_configs
-- Configurations to collect, locked; one a submit is using right now (it locks the row
-- it reuses) is skipped.
SELECT id FROM run_configs WHERE id = ANY($1::bytea[]) FOR UPDATE SKIP LOCKED;

-- name: delete_orphan_configs
DELETE FROM run_configs c
WHERE c.id = ANY($1::bytea[])
  AND NOT EXISTS (SELECT 1 FROM run_specs s WHERE s.config_id = c.id)
RETURNING c.id;

-- name: orphan_config_candidates
-- A sweep over every configuration (keyset on id), for those no run refers to.
SELECT c.id FROM run_configs c
WHERE c.id > $1 AND NOT EXISTS (SELECT 1 FROM run_specs s WHERE s.config_id = c.id)
ORDER BY c.id
LIMIT $2;

-- name: delete_old_fires
-- Schedule fires without a run (skipped, failed) that ended before :cutoff.
DELETE FROM schedule_fires
WHERE ctid = ANY(ARRAY(
    SELECT f.ctid FROM schedule_fires f JOIN schedules s ON s.id = f.schedule_id
    WHERE s.workspace_id = :workspace_id AND f.run_id IS NULL AND f.outcome <> 'BUFFERED'
      AND f.handled_at < :cutoff
    LIMIT :limit))
RETURNING schedule_id;

-- name: delete_old_audit_events
DELETE FROM audit_events
WHERE id = ANY(ARRAY(
    SELECT id FROM audit_events WHERE workspace_id = :workspace_id AND at < :cutoff
    ORDER BY id LIMIT :limit))
RETURNING id;

-- name: definition_known
-- Whether the workspace has or had a definition of that name or uuid.
SELECT EXISTS (SELECT 1 FROM definitions
               WHERE workspace_id = $1 AND (id::text = $2 OR name = $2));
