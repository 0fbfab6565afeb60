-- name: create_queue
INSERT INTO queues (workspace_id, name, description, priority, state, concurrency_limit)
VALUES (:workspace_id, :name, :description, :priority, :state, :concurrency_limit)
RETURNING created_at, updated_at;

-- name: get_queues
-- Queues of a workspace with their numbers: after :after_name (NULL: from the first) or
-- exactly :names (NULL: all), ordered by name. The counts walk runs_pending_idx (pending)
-- and runs_lease_expiry_idx (running) only.
SELECT q.name, q.description, q.priority, q.state, q.concurrency_limit, q.created_at,
       q.updated_at, w.name AS workspace,
       (SELECT count(*) FROM runs r
        WHERE r.workspace_id = q.workspace_id AND r.queue = q.name
          AND r.status = 'PENDING') AS pending,
       (SELECT count(*) FROM runs r
        WHERE r.workspace_id = q.workspace_id AND r.queue = q.name
          AND r.status = 'RUNNING') AS running,
       (SELECT min(r.submitted_at) FROM runs r
        WHERE r.workspace_id = q.workspace_id AND r.queue = q.name
          AND r.status = 'PENDING') AS oldest_pending,
       clock_timestamp() AS now
FROM queues q
JOIN workspaces w ON w.id = q.workspace_id
WHERE q.workspace_id = :workspace_id
  AND (:names::text[] IS NULL OR q.name = ANY(:names::text[]))
  AND (:after_name::text IS NULL OR q.name > :after_name::text)
ORDER BY q.name
LIMIT :limit;

-- name: lock_queue
SELECT name, description, priority, state, concurrency_limit
FROM queues WHERE workspace_id = $1 AND name = $2
FOR UPDATE;

-- name: update_queue
UPDATE queues
SET description = :description, priority = :priority, state = :state,
    concurrency_limit = :concurrency_limit, updated_at = clock_timestamp()
WHERE workspace_id = :workspace_id AND name = :name;

-- name: queue_holders
-- What keeps a queue (locked by lock_queue in the same transaction) from being deleted:
-- its unfinished runs and the live definitions whose current version names it.
SELECT
    (SELECT count(*) FROM runs r
     WHERE r.workspace_id = $1 AND r.queue = $2
       AND r.status IN ('PENDING', 'RUNNING')) AS unfinished,
    (SELECT count(*) FROM definitions d
     JOIN definition_versions v ON v.definition_id = d.id AND v.version = d.current_version
     WHERE d.workspace_id = $1 AND d.deleted_at IS NULL
       AND v.config ->> 'queue' = $2) AS definitions;

-- name: delete_queue
DELETE FROM queues WHERE workspace_id = $1 AND name = $2;

-- name: existing_queues
-- Which of $2 exist in workspace $1.
SELECT name FROM queues WHERE workspace_id = $1 AND name = ANY($2::text[]);

-- name: lock_limited_queues
-- The lease of a worker serving a queue with a concurrency limit starts here, in the
-- lease's transaction: each limited, enabled queue of :queues is locked (name order, so
-- two leases never deadlock), so the lease statement that follows, with a snapshot taken
-- after the lock, counts every run another lease started. Returns the names locked.
-- NO KEY UPDATE: leases of the queue wait for each other, submissions to it (the insert
-- trigger's KEY SHARE) do not.
SELECT name FROM queues
WHERE workspace_id = :workspace_id AND name = ANY(:queues::text[])
  AND concurrency_limit IS NOT NULL AND state = 'ENABLED'
ORDER BY name
FOR NO KEY UPDATE;

-- name: limited_queues
-- The queue names of :queues that have a concurrency limit (whatever their state).
SELECT name FROM queues
WHERE workspace_id = :workspace_id AND name = ANY(:queues::text[])
  AND concurrency_limit IS NOT NULL;

-- name: waiting_facts
-- For each PENDING run of :runs in workspace :workspace_id: its queue's state, limit and
-- running count, and how many pending runs of the queue are leased before it (counted up
-- to :cap). Runs not pending, or whose queue is gone, are left out.
SELECT r.id, q.name, q.state, q.concurrency_limit,
       CASE WHEN q.concurrency_limit IS NULL THEN 0 ELSE
           (SELECT count(*) FROM runs x
            WHERE x.workspace_id = r.workspace_id AND x.queue = r.queue
              AND x.status = 'RUNNING') END AS running,
       (SELECT count(*) FROM (
            SELECT 1 FROM runs p
            WHERE p.workspace_id = r.workspace_id AND p.queue = r.queue
              AND p.status = 'PENDING'
              AND (p.priority > r.priority
                   OR (p.priority = r.priority
                       AND (p.submitted_at, p.id) < (r.submitted_at, r.id)))
            LIMIT :cap) a) AS ahead,
       clock_timestamp() AS now
FROM runs r
JOIN queues q ON q.workspace_id = r.workspace_id AND q.name = r.queue
WHERE r.workspace_id = :workspace_id AND r.id = ANY(:runs::uuid[]) AND r.status = 'PENDING';
