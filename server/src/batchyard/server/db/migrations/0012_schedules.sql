-- Schedules (a definition run on a timetable), their fires, and retention policies.
--
-- Exactly once across replicas: every fire time a schedule acts on is a row of
-- schedule_fires, keyed by (schedule_id, fire_time), written in the same transaction as
-- the run it submits and the schedule's advanced cursor (next_fire_at). Two replicas that
-- pick the same fire time collide on that key; the loser inserts nothing.

CREATE TABLE schedules (
    id                  uuid        NOT NULL,
    workspace_id        uuid        NOT NULL,
    -- The definition as the schedule names it (name or uuid), looked up at each fire.
    definition_ref      text        COLLATE "C" NOT NULL,
    -- A serialized batchyard.v1.RunOverrides without its secret env, and the secret env
    -- sealed with the server's key (like run configurations).
    overrides           bytea       NOT NULL,
    sealed_secrets      bytea       NOT NULL,
    payload             bytea       NOT NULL,
    cron                text,
    interval_seconds    double precision,
    time_zone           text        NOT NULL,
    overlap_policy      text        NOT NULL,
    max_concurrent_runs integer     NOT NULL,
    catchup_seconds     double precision NOT NULL,
    start_at            timestamptz,
    end_at              timestamptz,
    -- Where intervals count from.
    anchor_at           timestamptz NOT NULL,
    note                text        NOT NULL DEFAULT '',
    paused              boolean     NOT NULL DEFAULT false,
    -- The next fire time not yet acted on; NULL: none (ended).
    next_fire_at        timestamptz,
    missed_fires        bigint      NOT NULL DEFAULT 0,
    last_error          text        NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT schedules_pkey PRIMARY KEY (id),
    CONSTRAINT schedules_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces (id),
    CONSTRAINT schedules_timing_check CHECK ((cron IS NULL) <> (interval_seconds IS NULL)),
    CONSTRAINT schedules_overlap_check
        CHECK (overlap_policy IN ('SKIP', 'BUFFER_ONE', 'ALLOW', 'CANCEL_OTHER'))
);
CREATE INDEX schedules_workspace_idx ON schedules (workspace_id, created_at DESC, id DESC);
-- The scheduler: active schedules by their next fire time.
CREATE INDEX schedules_due_idx ON schedules (next_fire_at) WHERE NOT paused;

CREATE TABLE schedule_fires (
    schedule_id  uuid        NOT NULL,
    fire_time    timestamptz NOT NULL,
    handled_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    outcome      text        NOT NULL,
    run_id       uuid,
    message      text        NOT NULL DEFAULT '',
    manual       boolean     NOT NULL DEFAULT false,
    CONSTRAINT schedule_fires_pkey PRIMARY KEY (schedule_id, fire_time),
    CONSTRAINT schedule_fires_schedule_fkey
        FOREIGN KEY (schedule_id) REFERENCES schedules (id) ON DELETE CASCADE,
    CONSTRAINT schedule_fires_outcome_check
        CHECK (outcome IN ('SUBMITTED', 'SKIPPED', 'BUFFERED', 'FAILED'))
);
-- At most one fire of a schedule waits (BUFFER_ONE).
CREATE UNIQUE INDEX schedule_fires_buffered_key
    ON schedule_fires (schedule_id) WHERE outcome = 'BUFFERED';
CREATE INDEX schedule_fires_run_idx ON schedule_fires (run_id) WHERE run_id IS NOT NULL;

-- A run knows the schedule and fire time that submitted it (no foreign key: a deleted
-- schedule leaves its runs).
ALTER TABLE runs ADD COLUMN schedule_id uuid;
ALTER TABLE runs ADD COLUMN schedule_fire_time timestamptz;
CREATE INDEX runs_schedule_idx ON runs (schedule_id, submitted_at DESC, id DESC)
    WHERE schedule_id IS NOT NULL;
-- The overlap policies count a schedule's unfinished runs.
CREATE INDEX runs_schedule_unfinished_idx ON runs (schedule_id)
    WHERE schedule_id IS NOT NULL AND status IN ('PENDING', 'RUNNING');

-- Retention: one policy per workspace (definition_id NULL) and overrides per definition.
-- NULL fields: the rule is not set (an override's NULL inherits the workspace's).
CREATE TABLE retention_policies (
    workspace_id     uuid    NOT NULL,
    definition_id    uuid,
    keep_seconds     double precision,
    keep_succeeded   integer,
    keep_failed      integer,
    audit_keep_seconds double precision,
    CONSTRAINT retention_policies_workspace_fkey
        FOREIGN KEY (workspace_id) REFERENCES workspaces (id)
);
CREATE UNIQUE INDEX retention_policies_key
    ON retention_policies (workspace_id, COALESCE(definition_id, '00000000-0000-0000-0000-000000000000'));
-- Retention walks finished runs by end time.
CREATE INDEX runs_ended_idx ON runs (ended_at)
    WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELLED');
-- Collecting run configurations that no run refers to any more looks them up by config.
CREATE INDEX run_specs_config_idx ON run_specs (config_id);
