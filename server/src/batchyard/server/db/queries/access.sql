-- name: token_by_prefix
-- A token with its workspace, for authentication (active or not: the caller decides).
SELECT t.id, t.name, t.role, t.prefix, t.secret_hash, t.expires_at, t.revoked_at,
       t.expires_at IS NOT NULL AND t.expires_at <= clock_timestamp() AS expired,
       w.id AS workspace_id, w.name AS workspace
FROM api_tokens t
JOIN workspaces w ON w.id = t.workspace_id
WHERE t.prefix = $1;

-- name: insert_token
-- :ttl_seconds is the lifetime in seconds (NULL: no expiry).
INSERT INTO api_tokens (id, workspace_id, name, role, prefix, secret_hash, created_by,
                        expires_at)
VALUES (:id, :workspace_id, :name, :role, :prefix, :secret_hash, :created_by,
        clock_timestamp() + make_interval(secs => :ttl_seconds::double precision))
RETURNING id, name, role, prefix, created_by, created_at, expires_at, revoked_at;

-- name: list_tokens
-- Newest first, after (:after_created, :after_id) (NULL: from the newest);
-- :show_inactive includes revoked and expired ones.
SELECT id, name, role, prefix, created_by, created_at, expires_at, revoked_at
FROM api_tokens
WHERE workspace_id = :workspace_id
  AND (:show_inactive OR (revoked_at IS NULL
              AND (expires_at IS NULL OR expires_at > clock_timestamp())))
  AND (:after_created::timestamptz IS NULL
       OR (created_at, id) < (:after_created::timestamptz, :after_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: revoke_token
-- By id or prefix, in the workspace; revoking twice keeps the first time.
UPDATE api_tokens
SET revoked_at = coalesce(revoked_at, clock_timestamp())
WHERE workspace_id = $1 AND (id = $2::uuid OR prefix = $3)
RETURNING id, name, role, prefix, created_by, created_at, expires_at, revoked_at;

-- name: count_tokens
SELECT count(*) FROM api_tokens;

-- name: insert_workspace
INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), $1)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, created_at;

-- name: list_workspaces
-- $1 after name ('' for the first page), $2 limit, $3 only this workspace id (NULL: all).
SELECT id, name, created_at
FROM workspaces
WHERE name > $1 AND ($3::uuid IS NULL OR id = $3::uuid)
ORDER BY name
LIMIT $2;

-- name: insert_audit_events
INSERT INTO audit_events (workspace_id, at, actor, action, object_kind, object_id, detail)
SELECT * FROM unnest(:workspace_ids::uuid[], :ats::timestamptz[], :actors::text[],
                     :actions::text[], :object_kinds::text[], :object_ids::text[],
                     :details::text[]);

-- name: list_audit_events
-- $1 workspace, $2 before id (0: from the newest), $3 limit, $4 action ('' = all).
SELECT id, at, actor, action, object_kind, object_id, detail
FROM audit_events
WHERE workspace_id = $1 AND ($2 = 0 OR id < $2) AND ($4 = '' OR action = $4)
ORDER BY id DESC
LIMIT $3;
