-- name: plaintext_definition_secrets
-- Migration 8 only (the plaintext column exists only during it). Keyset on the key:
-- $1/$2 after (definition_id, version), $3 limit.
SELECT definition_id, version, secrets
FROM definition_versions
WHERE secrets IS NOT NULL
  AND ($1::uuid IS NULL OR (definition_id, version) > ($1::uuid, $2::bigint))
ORDER BY definition_id, version
LIMIT $3;

-- name: seal_definition_secrets
-- Migration 8 only: the sealed value in, the plaintext out. $1 ids, $2 versions, $3 sealed.
UPDATE definition_versions v
SET sealed_secrets = u.sealed, secrets = NULL
FROM unnest($1::uuid[], $2::bigint[], $3::bytea[]) AS u(definition_id, version, sealed)
WHERE v.definition_id = u.definition_id AND v.version = u.version;

-- name: plaintext_run_configs
-- Migration 8 only. $1 after id (or NULL), $2 limit.
SELECT id, config, secrets
FROM run_configs
WHERE secrets IS NOT NULL AND ($1::bytea IS NULL OR id > $1::bytea)
ORDER BY id
LIMIT $2;

-- name: definition_secrets_to_reseal
-- Rotation: definition versions not sealed with the newest key ($3: the header its values
-- start with). $1/$2 after (definition_id, version), $4 limit.
SELECT definition_id, version, sealed_secrets
FROM definition_versions
WHERE ($1::uuid IS NULL OR (definition_id, version) > ($1::uuid, $2::bigint))
  AND substring(sealed_secrets FROM 1 FOR length($3::bytea)) <> $3::bytea
ORDER BY definition_id, version
LIMIT $4;

-- name: reseal_definition_secrets
-- Rotation: each version's value resealed, unless it changed since it was read.
-- $1 ids, $2 versions, $3 values read, $4 new values.
UPDATE definition_versions v
SET sealed_secrets = u.sealed
FROM unnest($1::uuid[], $2::bigint[], $3::bytea[], $4::bytea[])
     AS u(definition_id, version, old, sealed)
WHERE v.definition_id = u.definition_id AND v.version = u.version
  AND v.sealed_secrets = u.old;

-- name: run_configs_to_reseal
-- Rotation: run configurations not sealed with the newest key ($2: its header).
-- $1 after id (or NULL), $3 limit.
SELECT id, config, sealed_secrets
FROM run_configs
WHERE ($1::bytea IS NULL OR id > $1::bytea)
  AND substring(sealed_secrets FROM 1 FOR length($2::bytea)) <> $2::bytea
ORDER BY id
LIMIT $3;

-- name: rekey_run_configs
-- Migration 8 and rotation: each configuration under its new id (a digest with the newest
-- key) and newly sealed secrets; its runs follow it, the old row goes. Equal contents
-- get equal new ids and merge into one row. $1 old ids, $2 new ids, $3 configs,
-- $4 sealed secrets.
WITH m AS (
    SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::jsonb[], $4::bytea[])
                  AS m(old_id, new_id, config, sealed)
), resealed AS (
    UPDATE run_configs c SET sealed_secrets = m.sealed
    FROM m WHERE c.id = m.old_id AND m.new_id = m.old_id
), added AS (
    INSERT INTO run_configs (id, config, sealed_secrets)
    SELECT DISTINCT ON (new_id) new_id, config, sealed FROM m
    WHERE new_id <> old_id
    ORDER BY new_id
    ON CONFLICT (id) DO NOTHING
), specs AS (
    UPDATE run_specs s SET config_id = m.new_id
    FROM m WHERE s.config_id = m.old_id AND m.new_id <> m.old_id
)
DELETE FROM run_configs c USING m
WHERE c.id = m.old_id AND m.new_id <> m.old_id;

-- name: dangling_run_specs
-- Runs whose configuration row is missing (must be none).
SELECT count(*) FROM run_specs s
WHERE NOT EXISTS (SELECT 1 FROM run_configs c WHERE c.id = s.config_id);
