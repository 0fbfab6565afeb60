-- name: lease_cancel_requested
-- WaitForCancel: whether the run held by this lease was asked to stop. Fenced by
-- (run, attempt, lease) and the worker's workspace, not by the lease's expiry (the
-- heartbeat judges that): no row means the lease is not this worker's any more.
SELECT cancel_requested
FROM runs
WHERE id = :run AND attempt = :attempt AND lease_id = :lease_id
  AND status = 'RUNNING' AND workspace_id = :workspace_id;
