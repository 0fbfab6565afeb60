-- name: lock_service_clock
-- The tick: the last tick of any replica and the time of this one ($1, when not null, is
-- a test's clock), the row locked so replicas tick one at a time.
SELECT last_tick_at, COALESCE($1::timestamptz, clock_timestamp()) AS now
FROM service_clock
WHERE id = 1
FOR UPDATE;

-- name: extend_leases_after_outage
-- Every lease still live at the last tick (:last_tick) gets the outage back: extended by
-- :extend_seconds, and ending no sooner than :floor (when not null).
UPDATE runs
SET lease_expires_at = GREATEST(
        lease_expires_at + make_interval(secs => :extend_seconds),
        COALESCE(:floor::timestamptz, '-infinity'::timestamptz))
WHERE status = 'RUNNING' AND lease_expires_at > :last_tick::timestamptz;

-- name: set_service_clock
UPDATE service_clock
SET last_tick_at = :now::timestamptz,
    last_gap_at = CASE WHEN :gap_seconds::float8 IS NULL THEN last_gap_at ELSE :now::timestamptz END,
    last_gap_seconds = COALESCE(:gap_seconds::float8, last_gap_seconds)
WHERE id = 1;

-- name: fence_workers
-- The rescuer expired a lease of each of these workers: fenced until they prove alive.
-- :workspaces and :worker_ids are parallel arrays.
UPDATE workers w
SET fenced_at = clock_timestamp()
FROM unnest(:workspaces::uuid[], :worker_ids::text[]) AS f(workspace_id, worker_id)
WHERE w.workspace_id = f.workspace_id AND w.worker_id = f.worker_id;

-- name: worker_arrived
-- A LeaseRuns call: the worker is alive, so a fence set before the call is lifted, and
-- what it says of itself is kept (a write only when something changed, it was fenced,
-- or it was last seen over :coalesce_seconds ago). Returns the call's time (the
-- database's clock): a fence set after it answers the call's long-poll empty.
WITH arrived AS (
    INSERT INTO workers AS w (workspace_id, worker_id, host, version, queues, slots,
                              slots_busy, started_at)
    VALUES (:workspace_id, :worker_id, :host, :version, :queues::text[], :slots, :slots_busy,
            :started_at::timestamptz)
    ON CONFLICT (workspace_id, worker_id) DO UPDATE
    SET host = EXCLUDED.host, version = EXCLUDED.version, queues = EXCLUDED.queues,
        slots = EXCLUDED.slots, slots_busy = EXCLUDED.slots_busy,
        started_at = COALESCE(EXCLUDED.started_at, w.started_at),
        last_seen_at = clock_timestamp(), fenced_at = NULL
    WHERE w.fenced_at IS NOT NULL
       OR w.last_seen_at < clock_timestamp() - make_interval(secs => :coalesce_seconds)
       OR (w.host, w.version, w.queues, w.slots, w.slots_busy)
          IS DISTINCT FROM (EXCLUDED.host, EXCLUDED.version, EXCLUDED.queues, EXCLUDED.slots,
                            EXCLUDED.slots_busy)
       OR w.started_at IS DISTINCT FROM COALESCE(EXCLUDED.started_at, w.started_at)
)
SELECT clock_timestamp() AS call_at;

-- name: worker_waiting
-- A LeaseRuns long-poll looks again: is its worker fenced since the call began
-- (:call_at)? Its last_seen_at moves at most every :coalesce_seconds (an open poll is a
-- sign of life, but not worth a write per look).
WITH seen AS (
    UPDATE workers
    SET last_seen_at = clock_timestamp()
    WHERE workspace_id = :workspace_id AND worker_id = :worker_id
      AND last_seen_at < clock_timestamp() - make_interval(secs => :coalesce_seconds)
      AND (fenced_at IS NULL OR fenced_at < :call_at::timestamptz)
)
SELECT fenced_at IS NOT NULL AND fenced_at >= :call_at::timestamptz AS fenced
FROM workers
WHERE workspace_id = :workspace_id AND worker_id = :worker_id;

-- name: list_workers
-- The live workers of a workspace (seen within :ttl_seconds), by id, after :after.
SELECT worker_id, host, version, queues, slots, slots_busy, started_at, first_seen_at,
       last_seen_at, fenced_at IS NOT NULL AS fenced, TRUE AS alive
FROM workers
WHERE workspace_id = :workspace_id
  AND last_seen_at > clock_timestamp() - make_interval(secs => :ttl_seconds)
  AND (:after::text IS NULL OR worker_id > :after::text)
ORDER BY worker_id
LIMIT :limit;

-- name: get_worker
SELECT worker_id, host, version, queues, slots, slots_busy, started_at, first_seen_at,
       last_seen_at, fenced_at IS NOT NULL AS fenced,
       last_seen_at > clock_timestamp() - make_interval(secs => :ttl_seconds) AS alive
FROM workers
WHERE workspace_id = :workspace_id AND worker_id = :worker_id;

-- name: workers_running
-- The attempts these workers run now (the running runs, through their partial index).
SELECT worker_id, id, attempt, lease_expires_at
FROM runs
WHERE status = 'RUNNING' AND lease_expires_at IS NOT NULL
  AND workspace_id = :workspace_id AND worker_id = ANY(:worker_ids::text[])
ORDER BY worker_id, id;
