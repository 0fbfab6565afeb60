-- name: append_log_chunk
-- Store entries first_seq..last_seq of an attempt, fenced by its lease and only if they
-- continue what is stored. $1 run, $2 attempt, $3 lease, $4 first_seq, $5 last_seq,
-- $6 entries, $7 the worker's workspace. Returns: live (the lease holds), stored (the batch went in), current (the
-- attempt's log_seq before this statement).
WITH fence AS (
    SELECT 1 AS ok FROM runs
    WHERE id = $1 AND attempt = $2 AND lease_id = $3
      AND status = 'RUNNING' AND lease_expires_at > clock_timestamp()
      AND workspace_id = $7
), extended AS (
    UPDATE run_attempts SET log_seq = $5
    WHERE run_id = $1 AND number = $2 AND log_seq = $4 - 1 AND EXISTS (SELECT 1 FROM fence)
    RETURNING log_seq
), inserted AS (
    INSERT INTO run_log_chunks (run_id, attempt, first_seq, last_seq, entries)
    SELECT $1, $2, $4, $5, $6 FROM extended
)
SELECT EXISTS (SELECT 1 FROM fence) AS live,
       EXISTS (SELECT 1 FROM extended) AS stored,
       (SELECT log_seq FROM run_attempts WHERE run_id = $1 AND number = $2) AS current;

-- name: log_chunks_after
-- Chunks holding entries after (attempt $2, seq $3) of run $1, in log order; $4 attempt
-- filter (0 = all attempts), $5 how many chunks.
SELECT attempt, first_seq, last_seq, entries
FROM run_log_chunks
WHERE run_id = $1
  AND ($4::integer = 0 OR attempt = $4::integer)
  AND (attempt > $2 OR (attempt = $2 AND last_seq > $3))
ORDER BY attempt, first_seq
LIMIT $5;

-- name: log_end
-- Where the stored log of run $1 ends now: the last attempt with entries and its seq.
SELECT number AS attempt, log_seq FROM run_attempts
WHERE run_id = $1 AND log_seq > 0 AND ($2::integer = 0 OR number = $2::integer)
ORDER BY number DESC
LIMIT 1;

-- name: run_state_for_logs
-- Whether the run exists in the workspace, and whether it has finished.
SELECT status FROM runs WHERE workspace_id = $1 AND id = $2;
