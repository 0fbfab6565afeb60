-- name: lease_runs
-- One statement: pick up to :limit ready runs of :queues with SKIP LOCKED — the enabled
-- queues only (a paused queue's runs are never read), higher queue priority first, then
-- run priority, then oldest — start a new attempt on each with a fresh lease, and return
-- what the worker needs. A queue with a concurrency limit is served only when it is in
-- :locked (its row locked by lock_limited_queues earlier in this transaction), and then
-- at most up to its limit, counting the runs RUNNING now; unlimited queues skip the
-- count. Queues of :queues that do not exist are ignored. :workspace_id is the worker's
-- workspace.
WITH queue_room AS (
    SELECT q.name, q.priority,
           CASE WHEN q.concurrency_limit IS NULL THEN :limit
                ELSE greatest(0, q.concurrency_limit - (
                    SELECT count(*) FROM runs x
                    WHERE x.workspace_id = q.workspace_id AND x.queue = q.name
                      AND x.status = 'RUNNING'))
           END AS room
    FROM queues q
    WHERE q.workspace_id = :workspace_id AND q.name = ANY(:queues::text[])
      AND q.state = 'ENABLED'
      AND (q.concurrency_limit IS NULL OR q.name = ANY(:locked::text[]))
), qs AS (
    SELECT name, priority, room FROM queue_room WHERE room > 0
), leased AS (
    UPDATE runs r
    SET status = 'RUNNING', reason = '', message = '', attempt = r.attempt + 1,
        lease_id = gen_random_uuid(), worker_id = :worker_id,
        lease_expires_at = clock_timestamp() + make_interval(secs => :ttl_seconds),
        started_at = coalesce(r.started_at, clock_timestamp()), revision = r.revision + 1
    WHERE r.id = ANY(ARRAY(
        SELECT c.id
        FROM qs CROSS JOIN LATERAL (
            -- LIMIT :limit, not the queue's room: a limit the planner knows keeps this an
            -- ordered walk of runs_pending_idx (a computed one made it scan the table).
            SELECT p.id, p.priority, p.submitted_at,
                   row_number() OVER (ORDER BY p.priority DESC, p.submitted_at, p.id) AS n
            FROM (
                SELECT p.id, p.priority, p.submitted_at FROM runs p
                WHERE p.status = 'PENDING'
                  AND p.workspace_id = :workspace_id
                  AND p.queue = qs.name
                  AND p.available_at <= clock_timestamp()
                ORDER BY p.priority DESC, p.submitted_at, p.id
                LIMIT :limit
                FOR UPDATE SKIP LOCKED) p) c
        WHERE c.n <= qs.room
        ORDER BY qs.priority DESC, c.priority DESC, c.submitted_at, c.id
        LIMIT :limit))
    RETURNING r.id, r.workspace_id, r.attempt, r.lease_id, r.lease_expires_at, r.worker_id,
              r.definition_name, r.priority, r.submitted_at, r.queue
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
JOIN queues q ON q.workspace_id = l.workspace_id AND q.name = l.queue
ORDER BY q.priority DESC, l.priority DESC, l.submitted_at, l.id;

-- name: undo_leases
-- Runs just leased that no worker got: their secrets cannot be opened by this server
-- (sealed with a key it is not configured with), or the caller went away before the
-- answer. The attempt row goes, the run is pending again with a message, and leasable
-- after :delay_seconds seconds. Fenced by (run, attempt, lease).
-- :runs, :attempts, :lease_ids and :messages are parallel arrays.
WITH undone AS (
    UPDATE runs r
    SET status = 'PENDING', reason = 'IN_QUEUE', message = u.message, attempt = r.attempt - 1,
        lease_id = NULL, lease_expires_at = NULL,
        started_at = CASE WHEN r.attempt = 1 THEN NULL ELSE r.started_at END,
        available_at = clock_timestamp() + make_interval(secs => :delay_seconds),
        revision = r.revision + 1
    FROM unnest(:runs::uuid[], :attempts::integer[], :lease_ids::uuid[], :messages::text[])
         AS u(id, attempt, lease_id, message)
    WHERE r.id = u.id AND r.attempt = u.attempt AND r.lease_id = u.lease_id
      AND r.status = 'RUNNING'
    RETURNING r.id, u.attempt
)
DELETE FROM run_attempts a USING undone
WHERE a.run_id = undone.id AND a.number = undone.attempt;

-- name: renew_lease
-- Fenced by (run, attempt, lease) and the worker's workspace (:workspace_id). A lease
-- holds until the rescuer ends it (by the database clock, after making up for outages of
-- the service: maintenance/service_clock.py), so a renewal that comes late because the
-- service was away still lands. Progress changes bump the revision (watchers see them); a
-- bare heartbeat does not. The worker is seen (at most every :coalesce_seconds) and, if
-- fenced, proven alive.
WITH renewed AS (
    UPDATE runs
    SET lease_expires_at = clock_timestamp() + make_interval(secs => :ttl_seconds),
        progress = coalesce(:progress::integer, progress),
        revision = revision + CASE WHEN :progress::integer IS DISTINCT FROM progress
                                    AND :progress::integer IS NOT NULL THEN 1 ELSE 0 END
    WHERE id = :run AND attempt = :attempt AND lease_id = :lease_id
      AND status = 'RUNNING' AND workspace_id = :workspace_id
    RETURNING lease_expires_at, cancel_requested, worker_id
), seen AS (
    UPDATE workers w
    SET last_seen_at = clock_timestamp(), fenced_at = NULL
    FROM renewed r
    WHERE w.workspace_id = :workspace_id AND w.worker_id = r.worker_id
      AND (w.fenced_at IS NOT NULL
           OR w.last_seen_at < clock_timestamp() - make_interval(secs => :coalesce_seconds))
)
SELECT lease_expires_at, cancel_requested FROM renewed;

-- name: lock_run_for_worker
SELECT r.workspace_id, r.status, r.attempt, r.lease_id, r.queue, r.cancel_requested,
       r.num_retries_used,
       -- A lease holds until the rescuer ends it (see renew_lease).
       r.lease_expires_at IS NOT NULL AS lease_live, c.config
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
-- :ended_by: worker, release or rescuer; :peak_memory_bytes, :cpu_usec NULL if not measured;
-- :retry_budget: what the retry after it is charged to ('', 'job', 'infra').
UPDATE run_attempts
SET ended_at = clock_timestamp(), status = :status, reason = :reason, exit_code = :exit_code,
    message = :message,
    ended_by = :ended_by, retry_budget = :retry_budget,
    peak_memory_bytes = :peak_memory_bytes::bigint, cpu_usec = :cpu_usec::bigint
WHERE run_id = :run AND number = :attempt;

-- name: set_run_after_attempt
-- :retries_used and :infra_retries_used are 0 or 1 (this attempt spent a retry of the
-- job's budget, or of the infrastructure's: end_attempt's :retry_budget says which);
-- :delay_seconds until the next
-- attempt may start; :progress the final progress (or NULL).
-- A run cancelled at a user's request keeps the user's message, in the past tense
-- ("cancel requested by user: …" while it ran, "cancelled by user: …" now).
UPDATE runs
SET status = :status, reason = :reason,
    message = CASE WHEN :status = 'CANCELLED' AND cancel_requested
                   THEN regexp_replace(message, '^cancel requested by user', 'cancelled by user')
                   ELSE :message END,
    lease_id = NULL, lease_expires_at = NULL,
    num_retries_used = num_retries_used + :retries_used,
    num_infra_retries_used = num_infra_retries_used + :infra_retries_used,
    available_at = clock_timestamp() + make_interval(secs => :delay_seconds),
    ended_at = CASE WHEN :status IN ('SUCCEEDED', 'FAILED', 'CANCELLED') THEN clock_timestamp() END,
    progress = coalesce(:progress::integer, progress),
    revision = revision + 1
WHERE id = :run
RETURNING status, available_at;

-- name: lock_expired_leases
-- The rescuer: running runs whose lease ran out (by the database clock; $2, when not
-- null, is a test's clock). SKIP LOCKED keeps several server replicas from rescuing the
-- same run.
SELECT r.id, r.attempt, r.queue, r.worker_id, r.workspace_id, r.cancel_requested,
       r.num_retries_used, r.num_infra_retries_used, c.config
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
-- exactly what is stored. No row: the caller takes the general path (repeat, lease lost).
-- :entries as in run_log_chunks; :workspace_id is the worker's workspace.
WITH run AS (
    UPDATE runs
    SET status = 'SUCCEEDED', reason = '', message = :message, lease_id = NULL,
        lease_expires_at = NULL, ended_at = clock_timestamp(),
        progress = coalesce(:progress::integer, progress), revision = revision + 1
    WHERE id = :run AND attempt = :attempt AND lease_id = :lease_id
      AND status = 'RUNNING' AND workspace_id = :workspace_id  -- held until rescued
      AND EXISTS (SELECT 1 FROM run_attempts
                  WHERE run_id = :run AND number = :attempt AND log_seq = :first_seq - 1)
    RETURNING id, attempt, queue
), ended AS (
    -- One UPDATE of the attempt row: a second one in the same statement would be ignored.
    UPDATE run_attempts a
    SET ended_at = clock_timestamp(), status = 'SUCCEEDED', reason = '', exit_code = :exit_code,
        message = :message, ended_by = 'worker', log_seq = :last_seq,
        peak_memory_bytes = :peak_memory_bytes::bigint, cpu_usec = :cpu_usec::bigint
    FROM run
    WHERE a.run_id = run.id AND a.number = run.attempt
), stored AS (
    INSERT INTO run_log_chunks (run_id, attempt, first_seq, last_seq, entries)
    SELECT id, attempt, :first_seq, :last_seq, :entries FROM run
)
SELECT queue FROM run;

-- name: set_tasks
-- The task summary a worker reports (RenewLease, CompleteRun): the latest value wins,
-- fenced like renew_lease; a change bumps the revision (watchers see it).
UPDATE runs
SET tasks = :tasks::jsonb,
    revision = revision + CASE WHEN tasks IS DISTINCT FROM :tasks::jsonb THEN 1 ELSE 0 END
WHERE id = :run AND attempt = :attempt AND lease_id = :lease_id
  AND status = 'RUNNING' AND lease_expires_at > clock_timestamp()
  AND workspace_id = :workspace_id
RETURNING id;
