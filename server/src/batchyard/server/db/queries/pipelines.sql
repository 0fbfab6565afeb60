-- Array runs and dependencies (db/pipelines.py).

-- name: insert_pipeline_runs
-- The runs of a pipeline submission in one statement (like insert_runs, plus each run's
-- place in an array and its stored status: PENDING, WAITING on dependencies, or ARRAY for
-- a parent that never runs itself). Parallel arrays, one element per run.
WITH configs AS (
    INSERT INTO run_configs (id, config, sealed_secrets)
    SELECT * FROM unnest(:config_ids::bytea[], :configs::jsonb[], :sealed_secrets::bytea[])
    ON CONFLICT (id) DO NOTHING
), ins AS (
    INSERT INTO runs (id, workspace_id, definition_id, definition_name, definition_version,
                      request_id, queue, priority, status, reason, message, payload_size,
                      parent_id, array_index, array_size, children_unfinished,
                      dependencies_waiting)
    SELECT u.id, :workspace_id, u.definition_id, u.definition_name, u.definition_version,
           u.request_id, u.queue, u.priority, u.status,
           CASE u.status WHEN 'WAITING' THEN 'WAITING_ON_DEPENDENCIES'
                         ELSE 'RECENTLY_SUBMITTED' END,
           '', u.payload_size, u.parent_id, u.array_index, u.array_size,
           CASE WHEN u.status = 'ARRAY' THEN u.array_size ELSE 0 END, u.waiting
    FROM unnest(:ids::uuid[], :definition_ids::uuid[], :definition_names::text[],
                :definition_versions::bigint[], :request_ids::text[], :queues::text[],
                :priorities::integer[], :payload_sizes::bigint[], :statuses::text[],
                :parent_ids::uuid[], :array_indexes::integer[], :array_sizes::integer[],
                :waiting::integer[])
         AS u(id, definition_id, definition_name, definition_version, request_id, queue,
              priority, payload_size, status, parent_id, array_index, array_size, waiting)
    RETURNING id
)
INSERT INTO run_specs (run_id, config_id, payload)
SELECT s.id, s.config_id, s.payload
FROM unnest(:ids::uuid[], :run_config_ids::bytea[], :payloads::bytea[])
     AS s(id, config_id, payload)
WHERE s.id IN (SELECT id FROM ins);

-- name: insert_dependencies
INSERT INTO run_dependencies (run_id, depends_on, condition, kind, position)
SELECT * FROM unnest(:run_ids::uuid[], :depends_on::uuid[], :conditions::text[],
                     :kinds::text[], :positions::integer[]);

-- name: lock_dependency_targets
-- The runs a submission names, locked so that none can end unseen before the new edges
-- are committed (an end updates the row, which waits for this share lock). Another
-- workspace's runs are not returned: to the caller they do not exist.
SELECT id, status, array_size, parent_id
FROM runs
WHERE workspace_id = :workspace_id AND id = ANY(:ids::uuid[])
ORDER BY id
FOR SHARE;

-- name: lock_children
-- The children of array runs, by index, locked as lock_dependency_targets.
SELECT id, parent_id, array_index, status
FROM runs
WHERE parent_id = ANY(:parents::uuid[])
ORDER BY id
FOR SHARE;

-- name: settle_ended
-- One step of what ended runs (:ended) do to the graph, in one statement:
-- * their dependents' edges are met (condition holds) or broken (it never can); a
--   WAITING dependent with a broken edge ends FAILED (DEPENDENCY_FAILED, naming it), one
--   with nothing left to wait for becomes PENDING (leasable);
-- * when :count_children, each ended child counts down its ARRAY parent, which ends
--   SUCCEEDED or FAILED with its last child.
-- Returns the runs changed: the failed and the finished parents are the next step's
-- :ended (the caller loops until nothing more ends, in the same transaction).
WITH ended AS (
    SELECT id, status, parent_id FROM runs
    WHERE id = ANY(:ended::uuid[]) AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
), edges AS (
    SELECT d.run_id, d.depends_on, d.position, e.status AS dep_status,
           (d.condition = 'ANY' OR e.status = 'SUCCEEDED') AS ok
    FROM run_dependencies d JOIN ended e ON e.id = d.depends_on
    WHERE NOT d.met
), per_run AS (
    SELECT run_id, count(*) FILTER (WHERE ok) AS met,
           (array_agg(depends_on ORDER BY position) FILTER (WHERE NOT ok))[1] AS broken_by,
           (array_agg(dep_status ORDER BY position) FILTER (WHERE NOT ok))[1] AS broken_status
    FROM edges GROUP BY run_id
), locked AS (
    SELECT r.id FROM runs r
    WHERE r.id IN (SELECT run_id FROM per_run) AND r.status = 'WAITING'
    ORDER BY r.id
    FOR UPDATE
), changed AS (
    UPDATE runs r
    SET status = CASE WHEN p.broken_by IS NOT NULL THEN 'FAILED'
                      WHEN r.dependencies_waiting <= p.met THEN 'PENDING'
                      ELSE 'WAITING' END,
        reason = CASE WHEN p.broken_by IS NOT NULL THEN 'DEPENDENCY_FAILED'
                      WHEN r.dependencies_waiting <= p.met THEN 'IN_QUEUE'
                      ELSE r.reason END,
        message = CASE WHEN p.broken_by IS NOT NULL
                       THEN 'dependency ' || p.broken_by || ' ended ' || p.broken_status
                       ELSE '' END,
        dependencies_waiting = greatest(r.dependencies_waiting - p.met, 0),
        ended_at = CASE WHEN p.broken_by IS NOT NULL THEN clock_timestamp() END,
        available_at = clock_timestamp(),
        revision = r.revision + 1
    FROM per_run p
    WHERE r.id = p.run_id AND r.id IN (SELECT id FROM locked)
    RETURNING r.id, r.status, r.queue
), marked AS (
    -- Only a run still waiting keeps count of its met edges; for one that was released
    -- or failed they no longer matter (a run shows them met from their runs' statuses).
    UPDATE run_dependencies d SET met = true
    FROM edges, changed
    WHERE edges.ok AND changed.status = 'WAITING' AND changed.id = edges.run_id
      AND d.run_id = edges.run_id AND d.depends_on = edges.depends_on
), children AS (
    SELECT parent_id, count(*) AS n, count(*) FILTER (WHERE status <> 'SUCCEEDED') AS bad
    FROM ended
    WHERE :count_children AND parent_id IS NOT NULL
    GROUP BY parent_id
), parents AS (
    UPDATE runs p
    SET children_unfinished = p.children_unfinished - c.n,
        children_failed = p.children_failed + c.bad,
        status = CASE WHEN p.status <> 'ARRAY' OR p.children_unfinished > c.n THEN p.status
                      WHEN p.children_failed + c.bad > 0 THEN 'FAILED'
                      ELSE 'SUCCEEDED' END,
        reason = CASE WHEN p.status <> 'ARRAY' OR p.children_unfinished > c.n THEN p.reason
                      WHEN p.children_failed + c.bad > 0 THEN 'ARRAY_CHILD_FAILED'
                      ELSE '' END,
        message = CASE WHEN p.status <> 'ARRAY' OR p.children_unfinished > c.n THEN p.message
                       WHEN p.children_failed + c.bad > 0
                       THEN (p.children_failed + c.bad) || ' of ' || p.array_size
                            || ' children did not succeed'
                       ELSE '' END,
        ended_at = CASE WHEN p.status = 'ARRAY' AND p.children_unfinished <= c.n
                        THEN clock_timestamp() ELSE p.ended_at END,
        revision = p.revision + 1
    FROM children c
    WHERE p.id = c.parent_id
    RETURNING p.id, p.status, p.queue, p.children_unfinished, c.n
)
SELECT id, status, queue FROM changed
UNION ALL
SELECT id, status, queue FROM parents
WHERE status IN ('SUCCEEDED', 'FAILED') AND children_unfinished <= 0
  AND children_unfinished + n > 0;

-- name: notify_released
-- Wake the lease long-polls (queues) and watchers (run keys "@<uuid>") of every replica.
SELECT pg_notify('batchyard_runs', 'pipelines:' || k) FROM unnest(:keys::text[]) AS k;

-- name: cancel_array_parent
-- A user cancels an array: the parent is CANCELLED now.
UPDATE runs
SET status = 'CANCELLED', reason = 'CANCELLED_BY_USER', message = :message,
    ended_at = clock_timestamp(), revision = revision + 1
WHERE workspace_id = :workspace_id AND id = :run AND status = 'ARRAY'
RETURNING id;

-- name: cancel_array_children
-- Every unfinished child of an array being cancelled: waiting ones are CANCELLED now,
-- running ones are asked to stop. Returns the children that ended now.
WITH asked AS (
    UPDATE runs
    SET cancel_requested = true, message = :message, revision = revision + 1
    WHERE parent_id = :run AND status = 'RUNNING' AND NOT cancel_requested
)
UPDATE runs
SET status = 'CANCELLED', reason = 'CANCELLED_BY_USER', message = :message,
    ended_at = clock_timestamp(), revision = revision + 1
WHERE parent_id = :run AND status IN ('PENDING', 'WAITING')
RETURNING id;

-- name: cancel_waiting_run
UPDATE runs
SET status = 'CANCELLED', reason = 'CANCELLED_BY_USER', message = :message,
    ended_at = clock_timestamp(), revision = revision + 1
WHERE workspace_id = :workspace_id AND id = :run AND status = 'WAITING'
RETURNING id;

-- name: stored_status
SELECT status, array_size, parent_id FROM runs WHERE workspace_id = $1 AND id = $2;

-- name: delete_array
-- A finished array with every child: specs, logs, result listings, attempts (cascade),
-- the children, then the parent. Refused (no row) while a child is unfinished.
WITH parent AS (
    SELECT id FROM runs
    WHERE workspace_id = :workspace_id AND id = :run AND array_size > 0 AND parent_id IS NULL
      AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
      AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent_id = :run
                      AND c.status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED'))
), doomed AS (
    SELECT id FROM parent
    UNION ALL
    SELECT c.id FROM runs c WHERE c.parent_id = :run AND EXISTS (SELECT 1 FROM parent)
), spec AS (
    DELETE FROM run_specs WHERE run_id IN (SELECT id FROM doomed)
), logs AS (
    DELETE FROM run_log_chunks WHERE run_id IN (SELECT id FROM doomed)
), results AS (
    DELETE FROM run_results WHERE run_id IN (SELECT id FROM doomed)
), gone AS (
    DELETE FROM runs WHERE id IN (SELECT id FROM doomed)
    RETURNING id
)
SELECT count(*) AS n FROM gone;

-- name: array_summaries
-- Children of array parents counted by stored status, with their progress summed
-- (a succeeded child counts 100) and how many ever started.
SELECT parent_id, status, count(*) AS n,
       sum(CASE WHEN status = 'SUCCEEDED' THEN 100 ELSE progress END) AS progress,
       count(*) FILTER (WHERE started_at IS NOT NULL) AS started
FROM runs
WHERE parent_id = ANY(:parents::uuid[])
GROUP BY parent_id, status;

-- name: dependencies_of
-- An edge is met once flagged, or once its run ended as its condition asks (the flag is
-- kept only while its dependent waits: settle_ended).
SELECT d.run_id, d.depends_on, d.condition, d.kind,
       d.met OR coalesce(e.status = 'SUCCEEDED'
                         OR (d.condition = 'ANY'
                             AND e.status IN ('FAILED', 'CANCELLED')), false) AS met
FROM run_dependencies d
LEFT JOIN runs e ON e.id = d.depends_on
WHERE d.run_id = ANY(:runs::uuid[])
ORDER BY d.run_id, d.position;

-- name: array_places
-- For the lease: the array index and size of leased runs that are children.
SELECT id, array_index, array_size FROM runs
WHERE id = ANY(:ids::uuid[]) AND parent_id IS NOT NULL;

-- name: sweep_unreleased
-- The sweeper: ended runs that still have an unmet edge to a WAITING dependent (a
-- crash between an end and its settling, should there ever be one).
SELECT DISTINCT d.depends_on
FROM run_dependencies d
JOIN runs r ON r.id = d.run_id AND r.status = 'WAITING'
JOIN runs e ON e.id = d.depends_on AND e.status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')
WHERE NOT d.met
LIMIT :limit;

-- name: sweep_arrays
-- The sweeper: recount the children of open arrays from the children themselves; an
-- array whose children all ended ends. Returns the arrays that ended.
WITH counts AS (
    SELECT p.id,
           count(c.id) FILTER (WHERE c.status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED'))
               AS unfinished,
           count(c.id) FILTER (WHERE c.status IN ('FAILED', 'CANCELLED')) AS bad
    FROM runs p JOIN runs c ON c.parent_id = p.id
    WHERE p.status = 'ARRAY'
    GROUP BY p.id
), fixed AS (
    UPDATE runs p
    SET children_unfinished = c.unfinished, children_failed = c.bad,
        status = CASE WHEN c.unfinished > 0 THEN 'ARRAY'
                      WHEN c.bad > 0 THEN 'FAILED' ELSE 'SUCCEEDED' END,
        reason = CASE WHEN c.unfinished = 0 AND c.bad > 0 THEN 'ARRAY_CHILD_FAILED'
                      ELSE p.reason END,
        message = CASE WHEN c.unfinished = 0 AND c.bad > 0
                       THEN c.bad || ' of ' || p.array_size || ' children did not succeed'
                       ELSE p.message END,
        ended_at = CASE WHEN c.unfinished = 0 THEN clock_timestamp() END,
        revision = p.revision + 1
    FROM counts c
    WHERE p.id = c.id AND p.status = 'ARRAY'
      AND (c.unfinished <> p.children_unfinished OR c.bad <> p.children_failed)
    RETURNING p.id, p.status
)
SELECT id FROM fixed WHERE status <> 'ARRAY';
