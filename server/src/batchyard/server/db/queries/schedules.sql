-- name: insert_schedule
INSERT INTO schedules (id, workspace_id, definition_ref, overrides, sealed_secrets, payload,
                       cron, interval_seconds, time_zone, overlap_policy,
                       max_concurrent_runs, catchup_seconds, start_at, end_at, anchor_at,
                       note, next_fire_at)
VALUES (:id, :workspace_id, :definition_ref, :overrides, :sealed_secrets, :payload,
        :cron, :interval_seconds, :time_zone, :overlap_policy,
        :max_concurrent_runs, :catchup_seconds, :start_at, :end_at, :anchor_at,
        :note, :next_fire_at);

-- name: update_schedule
UPDATE schedules
SET definition_ref = :definition_ref, overrides = :overrides, sealed_secrets = :sealed_secrets,
    payload = :payload, cron = :cron, interval_seconds = :interval_seconds,
    time_zone = :time_zone, overlap_policy = :overlap_policy,
    max_concurrent_runs = :max_concurrent_runs, catchup_seconds = :catchup_seconds,
    start_at = :start_at, end_at = :end_at, anchor_at = :anchor_at, note = :note,
    next_fire_at = :next_fire_at, updated_at = clock_timestamp()
WHERE workspace_id = :workspace_id AND id = :id
RETURNING id;

-- name: get_schedules
SELECT s.*, w.name AS workspace
FROM schedules s JOIN workspaces w ON w.id = s.workspace_id
WHERE s.workspace_id = $1 AND s.id = ANY($2::uuid[]);

-- name: lock_schedule
SELECT s.*, w.name AS workspace
FROM schedules s JOIN workspaces w ON w.id = s.workspace_id
WHERE s.workspace_id = $1 AND s.id = $2
FOR UPDATE OF s;

-- name: list_schedules
-- Newest first, keyset paging on (created_at, id).
SELECT id FROM schedules
WHERE workspace_id = :workspace_id
  AND (:definition_ref::text IS NULL OR definition_ref = :definition_ref::text)
  AND (:after_created::timestamptz IS NULL
       OR (created_at, id) < (:after_created::timestamptz, :after_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: delete_schedule
DELETE FROM schedules WHERE workspace_id = $1 AND id = $2 RETURNING id;

-- name: set_schedule_paused
-- Pausing keeps the cursor; resuming moves it to the first fire time after now (times
-- while paused are not fired).
UPDATE schedules
SET paused = :paused,
    next_fire_at = CASE WHEN :paused::boolean THEN next_fire_at ELSE :next_fire_at END,
    updated_at = clock_timestamp()
WHERE workspace_id = :workspace_id AND id = :id
RETURNING id;

-- name: recent_fires_of
SELECT f.fire_time, f.handled_at, f.outcome, f.run_id, f.message, f.manual,
       r.status AS run_status
FROM schedule_fires f
LEFT JOIN runs r ON r.id = f.run_id
WHERE f.schedule_id = $1
ORDER BY f.fire_time DESC
LIMIT $2;

-- name: due_schedules
-- The scheduler: active schedules whose next fire time has come, soonest first.
SELECT id, workspace_id FROM schedules
WHERE NOT paused AND next_fire_at <= $1
ORDER BY next_fire_at
LIMIT $2;

-- name: next_due
-- When the scheduler must look next: the soonest fire time of an active schedule, and
-- whether some fire waits for its schedule's runs to end (BUFFER_ONE).
SELECT (SELECT min(next_fire_at) FROM schedules WHERE NOT paused) AS next_fire_at,
       EXISTS (SELECT 1 FROM schedule_fires WHERE outcome = 'BUFFERED') AS buffered;

-- name: buffered_ready
-- Buffered fires whose schedule has no unfinished run any more.
SELECT s.id, s.workspace_id
FROM schedule_fires f JOIN schedules s ON s.id = f.schedule_id
WHERE f.outcome = 'BUFFERED'
  AND NOT EXISTS (SELECT 1 FROM runs r
                  WHERE r.schedule_id = s.id AND r.status IN ('PENDING', 'RUNNING'))
LIMIT $1;

-- name: lock_due_schedule
-- One replica acts on a schedule at a time; the others skip it (SKIP LOCKED).
SELECT s.*, w.name AS workspace
FROM schedules s JOIN workspaces w ON w.id = s.workspace_id
WHERE s.id = $1
FOR UPDATE OF s SKIP LOCKED;

-- name: unfinished_runs_of_schedule
SELECT id FROM runs
WHERE schedule_id = $1 AND status IN ('PENDING', 'RUNNING')
ORDER BY submitted_at, id;

-- name: insert_fire
-- The exactly-once key: a fire time already acted on inserts nothing.
INSERT INTO schedule_fires (schedule_id, fire_time, handled_at, outcome, run_id, message,
                            manual)
VALUES (:schedule_id, :fire_time, :handled_at, :outcome, :run_id, :message, :manual)
ON CONFLICT (schedule_id, fire_time) DO NOTHING
RETURNING fire_time;

-- name: buffered_fire
SELECT fire_time FROM schedule_fires WHERE schedule_id = $1 AND outcome = 'BUFFERED';

-- name: settle_buffered_fire
UPDATE schedule_fires
SET outcome = :outcome, run_id = :run_id, message = :message, handled_at = :handled_at
WHERE schedule_id = :schedule_id AND outcome = 'BUFFERED'
RETURNING fire_time;

-- name: mark_run_scheduled
UPDATE runs SET schedule_id = $2, schedule_fire_time = $3 WHERE id = $1;

-- name: cancel_for_schedule
-- CANCEL_OTHER: pending runs end now; running ones are asked to stop.
WITH pending AS (
    UPDATE runs
    SET status = 'CANCELLED', reason = 'CANCELLED_BY_SCHEDULE', message = $2,
        ended_at = clock_timestamp(), revision = revision + 1
    WHERE id = ANY($1::uuid[]) AND status = 'PENDING'
    RETURNING id
), running AS (
    UPDATE runs
    SET cancel_requested = true, message = $2, revision = revision + 1
    WHERE id = ANY($1::uuid[]) AND status = 'RUNNING' AND NOT cancel_requested
    RETURNING id
)
SELECT id FROM pending UNION ALL SELECT id FROM running;

-- name: advance_schedule
UPDATE schedules
SET next_fire_at = $2, missed_fires = missed_fires + $3, last_error = $4
WHERE id = $1;

-- name: set_schedule_error
UPDATE schedules SET last_error = $2 WHERE id = $1;

-- name: database_now
SELECT clock_timestamp();

-- name: schedule_secrets_to_reseal
-- Rotation: schedules not sealed with the newest key ($2: its header); $1 after id.
SELECT id, sealed_secrets FROM schedules
WHERE ($1::uuid IS NULL OR id > $1::uuid)
  AND substring(sealed_secrets FROM 1 FOR length($2::bytea)) <> $2::bytea
ORDER BY id
LIMIT $3;

-- name: reseal_schedule_secrets
UPDATE schedules s SET sealed_secrets = u.sealed
FROM unnest($1::uuid[], $2::bytea[], $3::bytea[]) AS u(id, old, sealed)
WHERE s.id = u.id AND s.sealed_secrets = u.old;

-- name: overlap_state
-- What an overlap policy judges: the schedule's unfinished runs (oldest first) and
-- whether one of its fires is buffered.
SELECT coalesce(ARRAY(SELECT id FROM runs
                      WHERE schedule_id = $1 AND status IN ('PENDING', 'RUNNING')
                      ORDER BY submitted_at, id), '{}') AS unfinished,
       EXISTS (SELECT 1 FROM schedule_fires
               WHERE schedule_id = $1 AND outcome = 'BUFFERED') AS buffered;
