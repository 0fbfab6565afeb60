-- name: insert_results
-- The results an attempt reported with its completion (a repeated report adds nothing).
INSERT INTO run_results (run_id, attempt, name, size_bytes, sha256, media_type)
SELECT :run, :attempt, r.name, r.size_bytes, r.sha256, r.media_type
FROM unnest(:names::text[], :sizes::bigint[], :sha256s::text[], :media_types::text[])
    AS r(name, size_bytes, sha256, media_type)
ON CONFLICT (run_id, attempt, name) DO NOTHING;

-- name: list_results
-- A page of the results of the run's current attempt, by name; `found` says whether the
-- run exists in the workspace (false: no rows at all).
SELECT runs.id IS NOT NULL AS found, runs.attempt AS current_attempt,
       r.attempt, r.name, r.size_bytes, r.sha256, r.media_type, r.created_at
FROM (SELECT id, attempt FROM runs WHERE workspace_id = $1 AND id = $2) AS runs
LEFT JOIN LATERAL (
    SELECT attempt, name, size_bytes, sha256, media_type, created_at
    FROM run_results
    WHERE run_id = runs.id AND attempt = runs.attempt AND name > $3
    ORDER BY name
    LIMIT $4
) AS r ON true
ORDER BY r.name;

-- name: get_result
-- One result of the run's current attempt; `found` says whether the run exists.
SELECT runs.id IS NOT NULL AS found, r.attempt, r.name, r.size_bytes, r.sha256,
       r.media_type, r.created_at
FROM (SELECT id, attempt FROM runs WHERE workspace_id = $1 AND id = $2) AS runs
LEFT JOIN run_results AS r
    ON r.run_id = runs.id AND r.attempt = runs.attempt AND r.name = $3;
