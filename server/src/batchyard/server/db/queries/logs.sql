-- name: append_log_chunk
-- Store entries first_seq..last_seq of an attempt, fenced by its lease and only if they
-- continue what is stored; :workspace_id is the worker's workspace. Returns: live (the
-- lease holds), stored (the batch went in), current (the
-- attempt's log_seq before this statement).
WITH fence AS (
    SELECT 1 AS ok FROM runs
    WHERE id = :run AND attempt = :attempt AND lease_id = :lease_id
      AND status = 'RUNNING' AND workspace_id = :workspace_id  -- held until rescued
), extended AS (
    UPDATE run_attempts SET log_seq = :last_seq
    WHERE run_id = :run AND number = :attempt AND log_seq = :first_seq - 1
      AND EXISTS (SELECT 1 FROM fence)
    RETURNING log_seq
), inserted AS (
    INSERT INTO run_log_chunks (run_id, attempt, first_seq, last_seq, entries)
    SELECT :run, :attempt, :first_seq, :last_seq, :entries FROM extended
)
SELECT EXISTS (SELECT 1 FROM fence) AS live,
       EXISTS (SELECT 1 FROM extended) AS stored,
       (SELECT log_seq FROM run_attempts WHERE run_id = :run AND number = :attempt) AS current;

-- name: log_chunks_after
-- Chunks holding entries after (attempt :after_attempt, seq :after_seq) of run :run, in log
-- order; :attempt filters (0 = all attempts), :limit is how many chunks.
SELECT attempt, first_seq, last_seq, entries
FROM run_log_chunks
WHERE run_id = :run
  AND (:attempt::integer = 0 OR attempt = :attempt::integer)
  AND (attempt > :after_attempt OR (attempt = :after_attempt AND last_seq > :after_seq))
ORDER BY attempt, first_seq
LIMIT :limit;

-- name: log_end
-- Where the stored log of run $1 ends now: the last attempt with entries and its seq.
SELECT number AS attempt, log_seq FROM run_attempts
WHERE run_id = $1 AND log_seq > 0 AND ($2::integer = 0 OR number = $2::integer)
ORDER BY number DESC
LIMIT 1;

-- name: run_state_for_logs
-- Whether the run exists in the workspace, and whether it has finished.
SELECT status FROM runs WHERE workspace_id = $1 AND id = $2;
