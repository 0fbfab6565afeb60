-- Runs: mutable state in `runs`, the immutable spec in `run_specs`, one row per attempt.

CREATE TABLE runs (
    id                 uuid        NOT NULL,
    workspace_id       uuid        NOT NULL,
    definition_id      uuid,
    definition_name    text        NOT NULL DEFAULT '',
    definition_version bigint      NOT NULL DEFAULT 0,
    request_id         text,
    queue              text        NOT NULL,
    priority           integer     NOT NULL,
    status             text        NOT NULL,
    reason             text        NOT NULL,
    message            text        NOT NULL DEFAULT '',
    cancel_requested   boolean     NOT NULL DEFAULT false,
    progress           integer     NOT NULL DEFAULT 0,
    attempt            integer     NOT NULL DEFAULT 0,
    num_retries_used   integer     NOT NULL DEFAULT 0,
    payload_size       bigint      NOT NULL DEFAULT 0,
    lease_id           uuid,
    lease_expires_at   timestamptz,
    worker_id          text,
    available_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    submitted_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at         timestamptz,
    ended_at           timestamptz,
    revision           bigint      NOT NULL DEFAULT 1,
    CONSTRAINT runs_pkey PRIMARY KEY (id),
    CONSTRAINT runs_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces (id),
    CONSTRAINT runs_definition_fkey FOREIGN KEY (definition_id) REFERENCES definitions (id),
    CONSTRAINT runs_status_check
        CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
    CONSTRAINT runs_progress_check CHECK (progress BETWEEN 0 AND 100),
    CONSTRAINT runs_lease_check CHECK ((status = 'RUNNING') = (lease_id IS NOT NULL))
);

-- Idempotent submit: one run per (workspace, request_id).
CREATE UNIQUE INDEX runs_request_id_key
    ON runs (workspace_id, request_id) WHERE request_id IS NOT NULL;
-- The lease: pending runs of a queue, highest priority first, then oldest.
CREATE INDEX runs_pending_idx
    ON runs (queue, priority DESC, submitted_at, id) WHERE status = 'PENDING';
-- The rescuer: running runs by lease expiry.
CREATE INDEX runs_lease_expiry_idx ON runs (lease_expires_at) WHERE status = 'RUNNING';
-- ListRuns: newest first.
CREATE INDEX runs_workspace_submitted_idx ON runs (workspace_id, submitted_at DESC, id DESC);
CREATE INDEX runs_definition_idx ON runs (definition_id, submitted_at DESC, id DESC);

-- What a run executes, written once at submit: the effective configuration, its
-- secrets, and the payload.
CREATE TABLE run_specs (
    run_id  uuid  NOT NULL,
    config  jsonb NOT NULL,
    secrets jsonb NOT NULL,
    payload bytea NOT NULL,
    CONSTRAINT run_specs_pkey PRIMARY KEY (run_id),
    CONSTRAINT run_specs_run_fkey FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE TABLE run_attempts (
    run_id     uuid        NOT NULL,
    number     integer     NOT NULL,
    worker_id  text        NOT NULL,
    lease_id   uuid        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at   timestamptz,
    status     text        NOT NULL DEFAULT 'RUNNING',
    reason     text        NOT NULL DEFAULT '',
    exit_code  integer,
    message    text        NOT NULL DEFAULT '',
    -- Who ended it: worker (CompleteRun), release (ReleaseRun), rescuer (lease expired).
    ended_by   text,
    CONSTRAINT run_attempts_pkey PRIMARY KEY (run_id, number),
    CONSTRAINT run_attempts_run_fkey FOREIGN KEY (run_id) REFERENCES runs (id) ON DELETE CASCADE,
    CONSTRAINT run_attempts_ended_by_check CHECK (ended_by IN ('worker', 'release', 'rescuer'))
);
