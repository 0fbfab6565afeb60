-- Array runs and dependencies.
-- Two internal statuses the API shows as PENDING (or, for an array, RUNNING): a run
-- WAITING on its dependencies, and an ARRAY parent that never runs itself. Neither is
-- 'PENDING', so neither is in the lease's partial index: blocked runs cost leasing
-- nothing.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status = ANY (ARRAY[
    'PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'WAITING', 'ARRAY']));

ALTER TABLE runs
    ADD COLUMN parent_id uuid,
    ADD COLUMN array_index integer,
    ADD COLUMN array_size integer NOT NULL DEFAULT 0,
    -- An ARRAY parent: children not ended yet, and how many of the ended ones failed
    -- (updated by each child's end, so a parent's end costs one row per child).
    ADD COLUMN children_unfinished integer NOT NULL DEFAULT 0,
    ADD COLUMN children_failed integer NOT NULL DEFAULT 0,
    -- A WAITING run: dependencies not met yet.
    ADD COLUMN dependencies_waiting integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT runs_array_check CHECK (array_size = 0 OR array_size BETWEEN 2 AND 10000);

CREATE INDEX runs_parent_idx ON runs (parent_id, array_index) WHERE parent_id IS NOT NULL;
CREATE INDEX runs_waiting_idx ON runs (id) WHERE status = 'WAITING';
CREATE INDEX runs_array_open_idx ON runs (id) WHERE status = 'ARRAY';

-- One edge per (dependent, dependency). `met` flips once, when the dependency ends in a
-- way that satisfies `condition`; `kind` is how it was asked for (shown back).
CREATE TABLE run_dependencies (
    run_id uuid NOT NULL,
    depends_on uuid NOT NULL,
    condition text NOT NULL,
    kind text NOT NULL DEFAULT 'RUN',
    met boolean NOT NULL DEFAULT false,
    position integer NOT NULL DEFAULT 0,
    CONSTRAINT run_dependencies_pkey PRIMARY KEY (run_id, depends_on),
    CONSTRAINT run_dependencies_run_fkey FOREIGN KEY (run_id) REFERENCES runs(id)
        ON DELETE CASCADE,
    CONSTRAINT run_dependencies_condition_check CHECK (condition IN ('SUCCEEDED', 'ANY')),
    CONSTRAINT run_dependencies_kind_check CHECK (kind IN ('RUN', 'N_TO_N', 'SEQUENTIAL'))
);
CREATE INDEX run_dependencies_open_idx ON run_dependencies (depends_on) WHERE NOT met;
