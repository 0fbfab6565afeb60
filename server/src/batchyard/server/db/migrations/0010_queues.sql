-- Queues become objects: priority, state (ENABLED or PAUSED) and an optional concurrency
-- limit, per workspace. Every workspace has a `default` queue (a trigger gives each new
-- workspace its own); every queue name already used by a run or a definition becomes a
-- queue, so nothing submitted before this migration waits on a queue that does not exist.
CREATE TABLE queues (
    workspace_id      uuid        NOT NULL,
    name              text        NOT NULL,
    description       text        NOT NULL DEFAULT '',
    priority          integer     NOT NULL DEFAULT 0,
    state             text        NOT NULL DEFAULT 'ENABLED',
    concurrency_limit integer,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT queues_pkey PRIMARY KEY (workspace_id, name),
    CONSTRAINT queues_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces (id),
    CONSTRAINT queues_state_check CHECK (state IN ('ENABLED', 'PAUSED')),
    CONSTRAINT queues_limit_check CHECK (concurrency_limit IS NULL OR concurrency_limit >= 1)
);

INSERT INTO queues (workspace_id, name) SELECT id, 'default' FROM workspaces;

INSERT INTO queues (workspace_id, name)
SELECT DISTINCT workspace_id, queue FROM runs
ON CONFLICT DO NOTHING;

INSERT INTO queues (workspace_id, name)
SELECT DISTINCT d.workspace_id, v.config ->> 'queue'
FROM definitions d
JOIN definition_versions v ON v.definition_id = d.id
WHERE coalesce(v.config ->> 'queue', '') <> ''
ON CONFLICT DO NOTHING;

CREATE FUNCTION queues_default_for_workspace() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO queues (workspace_id, name) VALUES (NEW.id, 'default') ON CONFLICT DO NOTHING;
    RETURN NEW;
END;
$$;

CREATE TRIGGER workspaces_default_queue AFTER INSERT ON workspaces
FOR EACH ROW EXECUTE FUNCTION queues_default_for_workspace();

-- No run goes into a queue that does not exist (the server checks first and names the
-- field; this catches a queue deleted meanwhile). Once per INSERT statement, whatever
-- its size: the distinct queues of the new rows are locked (KEY SHARE, so a concurrent
-- DeleteQueue, which locks the queue's row FOR UPDATE, waits and then sees these runs).
CREATE FUNCTION runs_queue_exists() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    wanted integer;
    found integer;
    absent text;
BEGIN
    SELECT count(*) INTO wanted FROM (SELECT DISTINCT workspace_id, queue FROM new_runs) n;
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM queues q
        WHERE (q.workspace_id, q.name) IN (SELECT workspace_id, queue FROM new_runs)
        FOR KEY SHARE OF q) l;
    IF found < wanted THEN
        SELECT n.queue INTO absent FROM new_runs n
        WHERE NOT EXISTS (SELECT 1 FROM queues q
                          WHERE q.workspace_id = n.workspace_id AND q.name = n.queue)
        LIMIT 1;
        RAISE EXCEPTION 'queue % does not exist', absent
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'runs_queue_exists',
                  DETAIL = absent;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER runs_queue_exists AFTER INSERT ON runs
REFERENCING NEW TABLE AS new_runs
FOR EACH STATEMENT EXECUTE FUNCTION runs_queue_exists();
