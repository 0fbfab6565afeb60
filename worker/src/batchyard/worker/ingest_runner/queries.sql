-- The ingest runner's statements, as named blocks (loaded by ledger.py). `{ledger}` is the
-- ledger table's quoted name, put in by the runner; everything else is a $n parameter.

-- name: describe_table
-- The target table: its qualified name, whether the role may insert, and its columns.
SELECT n.nspname AS schema, c.relname AS name,
       has_table_privilege(c.oid, 'INSERT') AS may_insert,
       coalesce((SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS columns,
       coalesce((SELECT array_agg(t.typname::text ORDER BY a.attnum)
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS types,
       coalesce((SELECT array_agg(a.attnotnull ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS not_null,
       coalesce((SELECT array_agg(a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
                                  ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{}') AS defaulted
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')

-- name: ledger_exists
SELECT to_regclass($1) IS NOT NULL

-- name: create_ledger
CREATE TABLE IF NOT EXISTS {ledger} (
    target_table text NOT NULL,
    object_uri text NOT NULL,
    etag text NOT NULL,
    size bigint NOT NULL,
    rows bigint,
    bad_rows bigint,
    run_id text NOT NULL DEFAULT '',
    attempt integer NOT NULL DEFAULT 0,
    loaded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT batchyard_ingest_ledger_pkey PRIMARY KEY (target_table, object_uri, etag, size)
)

-- name: loaded_files
-- Which of the listed files are in the table already.
SELECT object_uri, etag, size FROM {ledger}
WHERE target_table = $1 AND object_uri = ANY($2::text[])

-- name: claim_file
-- Inside the file's transaction: nothing if the file is in (or being loaded by another
-- transaction, which this one then waits for).
INSERT INTO {ledger} (target_table, object_uri, etag, size, run_id, attempt)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
RETURNING true

-- name: finish_file
UPDATE {ledger} SET rows = $5, bad_rows = $6, loaded_at = clock_timestamp()
WHERE target_table = $1 AND object_uri = $2 AND etag = $3 AND size = $4
