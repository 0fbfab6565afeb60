-- name: workspace_by_name
SELECT id, name FROM workspaces WHERE name = $1;

-- name: create_definition
WITH d AS (
    INSERT INTO definitions (id, workspace_id, name, current_version)
    VALUES (:id, :workspace_id, :name, 1)
    RETURNING id, created_at
)
INSERT INTO definition_versions
    (definition_id, version, name, description, job_type, config, sealed_secrets, created_at)
SELECT d.id, 1, :name, :description, :job_type, :config, :sealed_secrets, d.created_at FROM d
RETURNING created_at;

-- name: get_definition
-- $1 workspace_id, $2 id (or NULL), $3 name (or NULL), $4 version (0 = current)
SELECT d.id, w.name AS workspace, v.version, v.name, v.description, v.config, v.sealed_secrets,
       d.created_at, v.created_at AS updated_at, d.current_version
FROM definitions d
JOIN workspaces w ON w.id = d.workspace_id
JOIN definition_versions v
  ON v.definition_id = d.id
 AND v.version = CASE WHEN $4::bigint = 0 THEN d.current_version ELSE $4::bigint END
WHERE d.workspace_id = $1
  AND d.deleted_at IS NULL
  AND (d.id = $2::uuid OR ($2::uuid IS NULL AND d.name = $3::text));

-- name: lock_definition
-- $1 workspace_id, $2 id (or NULL), $3 name (or NULL)
SELECT d.id
FROM definitions d
WHERE d.workspace_id = $1
  AND d.deleted_at IS NULL
  AND (d.id = $2::uuid OR ($2::uuid IS NULL AND d.name = $3::text))
FOR UPDATE;

-- name: add_definition_version
WITH v AS (
    INSERT INTO definition_versions
        (definition_id, version, name, description, job_type, config, sealed_secrets)
    VALUES (:id, :version, :name, :description, :job_type, :config, :sealed_secrets)
    RETURNING created_at
)
UPDATE definitions SET name = :name, current_version = :version
WHERE id = :id
RETURNING (SELECT created_at FROM v) AS updated_at, created_at;

-- name: delete_definition
-- $1 workspace_id, $2 id (or NULL), $3 name (or NULL)
UPDATE definitions SET deleted_at = clock_timestamp()
WHERE workspace_id = $1
  AND deleted_at IS NULL
  AND (id = $2::uuid OR ($2::uuid IS NULL AND name = $3::text))
RETURNING id;

-- name: list_definitions
-- After (:after_name, :after_id) (NULL: from the first); :job_type NULL: any type.
-- Keyset paging on (name, id): stable under concurrent inserts and deletes.
SELECT d.id, w.name AS workspace, v.version, v.name, v.description, v.config, v.sealed_secrets,
       d.created_at, v.created_at AS updated_at, d.current_version
FROM definitions d
JOIN workspaces w ON w.id = d.workspace_id
JOIN definition_versions v ON v.definition_id = d.id AND v.version = d.current_version
WHERE d.workspace_id = :workspace_id
  AND d.deleted_at IS NULL
  AND (:after_name::text IS NULL OR (d.name, d.id) > (:after_name::text, :after_id::uuid))
  AND starts_with(d.name, :name_prefix::text)
  AND (:job_type::text IS NULL OR v.job_type = :job_type::text)
ORDER BY d.name, d.id
LIMIT :limit;

-- name: get_current_definitions
-- Many current definitions at once, by uuid or name. $1 workspace, $2 uuids, $3 names.
SELECT d.id, w.name AS workspace, v.version, v.name, v.description, v.config, v.sealed_secrets,
       d.created_at, v.created_at AS updated_at, d.current_version
FROM definitions d
JOIN workspaces w ON w.id = d.workspace_id
JOIN definition_versions v ON v.definition_id = d.id AND v.version = d.current_version
WHERE d.workspace_id = $1
  AND d.deleted_at IS NULL
  AND (d.id = ANY($2::uuid[]) OR d.name = ANY($3::text[]));
