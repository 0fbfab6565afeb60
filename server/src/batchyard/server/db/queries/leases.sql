-- name: lease_runs
-- One statement: pick up to $2 ready runs of the queues $1 (highest priority first, then
-- oldest) with SKIP LOCKED, start a new attempt on each with a fresh lease, and return
-- what the worker needs. $3 worker id, $4 lease seconds, $5 the worker's workspace.
WITH leased AS (
    UPDATE runs r
    SET status = 'RUNNING', reason = '', message = '', attempt = r.attempt + 1,
        lease_id = gen_random_uuid(), worker_id = $3,
        lease_expires_at = clock_timestamp() + make_interval(secs => $4),
        started_at = coalesce(r.started_at, clock_timestamp()), revision = r.revision + 1
    WHERE r.id = ANY(ARRAY(
        SELECT p.id FROM runs p
        WHERE p.status = 'PENDING'
          AND p.workspace_id = $5
          AND p.queue = ANY($1::text[])
          AND p.available_at <= clock_timestamp()
        ORDER BY p.priority DESC, p.submitted_at, p.id
        LIMIT $2
        FOR UPDATE SKIP LOCKED))
    RETURNING r.id, r.workspace_id, r.attempt, r.lease_id, r.lease_expires_at, r.worker_id,
              r.definition_name, r.priority, r.submitted_at
), started AS (
    INSERT INTO run_attempts (run_id, number, worker_id, lease_id)
    SELECT id, attempt, worker_id, lease_id FROM leased
)
SELECT l.id, l.attempt, l.lease_id, l.lease_expires_at, l.definition_name,
       w.name AS workspace, c.config, c.sealed_secrets, s.payload
FROM leased l
JOIN run_specs s ON s.run_id = l.id
JOIN run_configs c ON c.id = s.config_id
JOIN workspaces w ON w.id = l.workspace_id
ORDER BY l.priority DESC, l.submitted_at, l.id;

-- name: unlease_unreadable
-- Runs just leased whose secrets this server cannot open (sealed with a key it is not
-- configured with): undo the lease before any worker saw it. The attempt row goes, the
-- run is pending again with a message, and leasable after $5 seconds (by a server that
-- has the key, or this one once it is configured). Fenced by (run, attempt, lease).
-- $1 runs, $2 attempts, $3 lease ids, $4 messages, $5 delay seconds.
WITH undone AS (
    UPDATE runs r
    SET status = 'PENDING', reason = 'IN_QUEUE', message = u.message, attempt = r.attempt - 1,
        lease_id = NULL, lease_expires_at = NULL,
        started_at = CASE WHEN r.attempt = 1 THEN NULL ELSE r.started_at END,
        available_at = clock_timestamp() + make_interval(secs => $5),
        revision = r.revision + 1
    FROM unnest($1::uuid[], $2::integer[], $3::uuid[], $4::text[])
         AS u(id, attempt, lease_id, message)
    WHERE r.id = u.id AND r.attempt = u.attempt AND r.lease_id = u.lease_id
      AND r.status = 'RUNNING'
    RETURNING r.id, u.attempt
)
DELETE FROM run_attempts a USING undone
WHERE a.run_id = undone.id AND a.number = undone.attempt;

-- name: renew_lease
-- Fenced by (run, attempt, lease), the worker's workspace ($6) and the database clock. Progress changes bump the
-- revision (watchers see them); a bare heartbeat does not.
UPDATE runs
SET lease_expires_at = clock_timestamp() + make_interval(secs => $5),
    progress = coalesce($4::integer, progress),
    revision = revision + CASE WHEN $4::integer IS DISTINCT FROM progress
                                AND $4::integer IS NOT NULL THEN 1 ELSE 0 END
WHERE id = $1 AND attempt = $2 AND lease_id = $3
  AND status = 'RUNNING' AND lease_expires_at > clock_timestamp()
  AND workspace_id = $6
RETURNING lease_expires_at, cancel_requested;

-- name: lock_run_for_worker
SELECT r.workspace_id, r.status, r.attempt, r.lease_id, r.queue, r.cancel_requested,
       r.num_retries_used,
       r.lease_expires_at > clock_timestamp() AS lease_live, c.config
FROM runs r
JOIN run_specs s ON s.run_id = r.id
JOIN run_configs c ON c.id = s.config_id
WHERE r.id = $1
FOR UPDATE OF r;

-- name: get_attempt
SELECT lease_id, status, reason, exit_code, ended_by
FROM run_attempts
WHERE run_id = $1 AND number = $2;

-- name: end_attempt
-- $1 run, $2 attempt, $3 status, $4 reason, $5 exit code, $6 message, $7 ended_by
UPDATE run_attempts
SET ended_at = clock_timestamp(), status = $3, reason = $4, exit_code = $5, message = $6,
    ended_by = $7
WHERE run_id = $1 AND number = $2;

-- name: set_run_after_attempt
-- $1 run, $2 status, $3 reason, $4 message, $5 retries used now (0 or 1),
-- $6 delay seconds before the next attempt, $7 final progress (or NULL).
-- A run cancelled at a user's request keeps the user's message ("cancelled by user: …").
UPDATE runs
SET status = $2, reason = $3,
    message = CASE WHEN $2 = 'CANCELLED' AND cancel_requested THEN message ELSE $4 END,
    lease_id = NULL, lease_expires_at = NULL,
    num_retries_used = num_retries_used + $5,
    available_at = clock_timestamp() + make_interval(secs => $6),
    ended_at = CASE WHEN $2 IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN clock_timestamp() END,
    progress = coalesce($7::integer, progress),
    revision = revision + 1
WHERE id = $1
RETURNING status, available_at;

-- name: lock_expired_leases
-- The rescuer: running runs whose lease ran out (by the database clock; $2, when not
-- null, is a test's clock). SKIP LOCKED keeps several server replicas from rescuing the
-- same run.
SELECT r.id, r.attempt, r.queue, r.worker_id, r.cancel_requested, r.num_retries_used, c.config
FROM runs r
JOIN run_specs s ON s.run_id = r.id
JOIN run_configs c ON c.id = s.config_id
WHERE r.status = 'RUNNING' AND r.lease_expires_at <= COALESCE($2::timestamptz, clock_timestamp())
ORDER BY r.lease_expires_at
LIMIT $1
FOR UPDATE OF r SKIP LOCKED;

-- name: complete_succeeded_with_logs
-- The common case in one statement: a live lease reports success (success ends the run
-- whatever its retry strategy or a pending cancel, as domain.runs.after_attempt says),
-- with the attempt's last log entries (a short attempt's whole log) when they continue
-- exactly what is stored. No row: the caller takes the general path (repeat, lease lost). $1 run, $2 attempt, $3 lease, $4 message, $5 exit code, $6 progress,
-- $7 first seq, $8 last seq, $9 entries (as in run_log_chunks), $10 the worker's workspace.
WITH run AS (
    UPDATE runs
    SET status = 'SUCCEEDED', reason = '', message = $4, lease_id = NULL,
        lease_expires_at = NULL, ended_at = clock_timestamp(),
        progress = coalesce($6::integer, progress), revision = revision + 1
    WHERE id = $1 AND attempt = $2 AND lease_id = $3
      AND status = 'RUNNING' AND lease_expires_at > clock_timestamp()
      AND workspace_id = $10
      AND EXISTS (SELECT 1 FROM run_attempts
                  WHERE run_id = $1 AND number = $2 AND log_seq = $7 - 1)
    RETURNING id, attempt, queue
), ended AS (
    -- One UPDATE of the attempt row: a second one in the same statement would be ignored.
    UPDATE run_attempts a
    SET ended_at = clock_timestamp(), status = 'SUCCEEDED', reason = '', exit_code = $5,
        message = $4, ended_by = 'worker', log_seq = $8
    FROM run
    WHERE a.run_id = run.id AND a.number = run.attempt
), stored AS (
    INSERT INTO run_log_chunks (run_id, attempt, first_seq, last_seq, entries)
    SELECT id, attempt, $7, $8, $9 FROM run
)
SELECT queue FROM run;
