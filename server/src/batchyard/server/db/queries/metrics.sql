-- name: queue_gauges
-- Pending depth, oldest pending age and running runs per queue (both statuses have a
-- partial index; finished runs are never read).
SELECT queue,
       count(*) FILTER (WHERE status = 'PENDING') AS pending,
       coalesce(extract(epoch FROM clock_timestamp()
                - min(submitted_at) FILTER (WHERE status = 'PENDING')), 0)::float8 AS oldest,
       count(*) FILTER (WHERE status = 'RUNNING') AS running
FROM runs
WHERE status IN ('PENDING', 'RUNNING')
GROUP BY queue;

-- name: runs_by_outcome
-- Stored runs by queue, status and reason.
SELECT queue, status, reason, count(*) AS runs
FROM runs
GROUP BY queue, status, reason;

-- name: lease_latencies
-- Submit → RUNNING of the runs just leased.
SELECT queue, extract(epoch FROM started_at - submitted_at)::float8 AS seconds
FROM runs
WHERE id = ANY(:ids::uuid[]) AND started_at IS NOT NULL;

-- name: log_storage
-- Log chunks stored (the statistics' estimate: an exact count reads every chunk) and the
-- bytes the log table takes.
SELECT coalesce((SELECT n_live_tup FROM pg_stat_user_tables
                 WHERE relname = 'run_log_chunks'), 0)::bigint AS chunks,
       pg_total_relation_size('run_log_chunks')::bigint AS bytes;
