-- The schema the migrations produce, from scratch (pg_dump --schema-only, normalised).
-- Generated: uv run python -m tests.schema_dump --write. Never edit by hand.

CREATE FUNCTION public.queues_default_for_workspace() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO queues (workspace_id, name) VALUES (NEW.id, 'default') ON CONFLICT DO NOTHING;
    RETURN NEW;
END;
$$;

CREATE FUNCTION public.runs_queue_exists() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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

CREATE TABLE public.api_tokens (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    prefix text NOT NULL,
    secret_hash bytea NOT NULL,
    created_by text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    expires_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_tokens_role_check CHECK ((role = ANY (ARRAY['ADMIN'::text, 'MEMBER'::text, 'VIEWER'::text, 'WORKER'::text])))
);

CREATE TABLE public.audit_events (
    id bigint NOT NULL,
    workspace_id uuid NOT NULL,
    at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    object_kind text NOT NULL,
    object_id text NOT NULL,
    detail text DEFAULT ''::text NOT NULL
);

ALTER TABLE public.audit_events ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.audit_events_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.definition_versions (
    definition_id uuid NOT NULL,
    version bigint NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    job_type text NOT NULL,
    config jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    sealed_secrets bytea NOT NULL,
    CONSTRAINT definition_versions_job_type_check CHECK ((job_type = ANY (ARRAY['PYTHON'::text, 'SQL'::text, 'SHELL'::text, 'INGEST'::text])))
);

CREATE TABLE public.definitions (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    name text NOT NULL COLLATE pg_catalog."C",
    current_version bigint NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    deleted_at timestamp with time zone,
    CONSTRAINT definitions_version_check CHECK ((current_version >= 1))
);

CREATE TABLE public.queues (
    workspace_id uuid NOT NULL,
    name text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    state text DEFAULT 'ENABLED'::text NOT NULL,
    concurrency_limit integer,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    updated_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT queues_limit_check CHECK (((concurrency_limit IS NULL) OR (concurrency_limit >= 1))),
    CONSTRAINT queues_state_check CHECK ((state = ANY (ARRAY['ENABLED'::text, 'PAUSED'::text])))
);

CREATE TABLE public.retention_policies (
    workspace_id uuid NOT NULL,
    definition_id uuid,
    keep_seconds double precision,
    keep_succeeded integer,
    keep_failed integer,
    audit_keep_seconds double precision
);

CREATE TABLE public.run_attempts (
    run_id uuid NOT NULL,
    number integer NOT NULL,
    worker_id text NOT NULL,
    lease_id uuid NOT NULL,
    started_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    ended_at timestamp with time zone,
    status text DEFAULT 'RUNNING'::text NOT NULL,
    reason text DEFAULT ''::text NOT NULL,
    exit_code integer,
    message text DEFAULT ''::text NOT NULL,
    ended_by text,
    log_seq bigint DEFAULT 0 NOT NULL,
    peak_memory_bytes bigint,
    cpu_usec bigint,
    retry_budget text DEFAULT ''::text NOT NULL,
    CONSTRAINT run_attempts_cpu_usec_check CHECK ((cpu_usec >= 0)),
    CONSTRAINT run_attempts_ended_by_check CHECK ((ended_by = ANY (ARRAY['worker'::text, 'release'::text, 'rescuer'::text]))),
    CONSTRAINT run_attempts_peak_memory_check CHECK ((peak_memory_bytes >= 0))
);

CREATE TABLE public.run_configs (
    id bytea NOT NULL,
    config jsonb NOT NULL,
    sealed_secrets bytea NOT NULL
);

CREATE TABLE public.run_dependencies (
    run_id uuid NOT NULL,
    depends_on uuid NOT NULL,
    condition text NOT NULL,
    kind text DEFAULT 'RUN'::text NOT NULL,
    met boolean DEFAULT false NOT NULL,
    "position" integer DEFAULT 0 NOT NULL,
    CONSTRAINT run_dependencies_condition_check CHECK ((condition = ANY (ARRAY['SUCCEEDED'::text, 'ANY'::text]))),
    CONSTRAINT run_dependencies_kind_check CHECK ((kind = ANY (ARRAY['RUN'::text, 'N_TO_N'::text, 'SEQUENTIAL'::text])))
);

CREATE TABLE public.run_log_chunks (
    run_id uuid NOT NULL,
    attempt integer NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    entries bytea NOT NULL,
    CONSTRAINT run_log_chunks_seq_check CHECK (((first_seq >= 1) AND (last_seq >= first_seq)))
);

CREATE TABLE public.run_results (
    run_id uuid NOT NULL,
    attempt integer NOT NULL,
    name text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 text NOT NULL,
    media_type text NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT run_results_sha256_check CHECK ((sha256 ~ '^[0-9a-f]{64}$'::text)),
    CONSTRAINT run_results_size_check CHECK ((size_bytes >= 0))
);

CREATE TABLE public.run_specs (
    run_id uuid NOT NULL,
    payload bytea NOT NULL,
    config_id bytea NOT NULL
);

CREATE TABLE public.runs (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    definition_id uuid,
    definition_name text DEFAULT ''::text NOT NULL,
    definition_version bigint DEFAULT 0 NOT NULL,
    request_id text,
    queue text NOT NULL,
    priority integer NOT NULL,
    status text NOT NULL,
    reason text NOT NULL,
    message text DEFAULT ''::text NOT NULL,
    cancel_requested boolean DEFAULT false NOT NULL,
    progress integer DEFAULT 0 NOT NULL,
    attempt integer DEFAULT 0 NOT NULL,
    num_retries_used integer DEFAULT 0 NOT NULL,
    payload_size bigint DEFAULT 0 NOT NULL,
    lease_id uuid,
    lease_expires_at timestamp with time zone,
    worker_id text,
    available_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    submitted_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    started_at timestamp with time zone,
    ended_at timestamp with time zone,
    revision bigint DEFAULT 1 NOT NULL,
    parent_id uuid,
    array_index integer,
    array_size integer DEFAULT 0 NOT NULL,
    children_unfinished integer DEFAULT 0 NOT NULL,
    children_failed integer DEFAULT 0 NOT NULL,
    dependencies_waiting integer DEFAULT 0 NOT NULL,
    schedule_id uuid,
    schedule_fire_time timestamp with time zone,
    tasks jsonb,
    num_infra_retries_used integer DEFAULT 0 NOT NULL,
    CONSTRAINT runs_array_check CHECK (((array_size = 0) OR ((array_size >= 2) AND (array_size <= 10000)))),
    CONSTRAINT runs_lease_check CHECK (((status = 'RUNNING'::text) = (lease_id IS NOT NULL))),
    CONSTRAINT runs_progress_check CHECK (((progress >= 0) AND (progress <= 100))),
    CONSTRAINT runs_status_check CHECK ((status = ANY (ARRAY['PENDING'::text, 'RUNNING'::text, 'SUCCEEDED'::text, 'FAILED'::text, 'CANCELLED'::text, 'WAITING'::text, 'ARRAY'::text])))
);

CREATE TABLE public.schedule_fires (
    schedule_id uuid NOT NULL,
    fire_time timestamp with time zone NOT NULL,
    handled_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    outcome text NOT NULL,
    run_id uuid,
    message text DEFAULT ''::text NOT NULL,
    manual boolean DEFAULT false NOT NULL,
    CONSTRAINT schedule_fires_outcome_check CHECK ((outcome = ANY (ARRAY['SUBMITTED'::text, 'SKIPPED'::text, 'BUFFERED'::text, 'FAILED'::text])))
);

CREATE TABLE public.schedules (
    id uuid NOT NULL,
    workspace_id uuid NOT NULL,
    definition_ref text NOT NULL COLLATE pg_catalog."C",
    overrides bytea NOT NULL,
    sealed_secrets bytea NOT NULL,
    payload bytea NOT NULL,
    cron text,
    interval_seconds double precision,
    time_zone text NOT NULL,
    overlap_policy text NOT NULL,
    max_concurrent_runs integer NOT NULL,
    catchup_seconds double precision NOT NULL,
    start_at timestamp with time zone,
    end_at timestamp with time zone,
    anchor_at timestamp with time zone NOT NULL,
    note text DEFAULT ''::text NOT NULL,
    paused boolean DEFAULT false NOT NULL,
    next_fire_at timestamp with time zone,
    missed_fires bigint DEFAULT 0 NOT NULL,
    last_error text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    updated_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT schedules_overlap_check CHECK ((overlap_policy = ANY (ARRAY['SKIP'::text, 'BUFFER_ONE'::text, 'ALLOW'::text, 'CANCEL_OTHER'::text]))),
    CONSTRAINT schedules_timing_check CHECK (((cron IS NULL) <> (interval_seconds IS NULL)))
);

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

CREATE TABLE public.service_clock (
    id integer NOT NULL,
    last_tick_at timestamp with time zone,
    last_gap_at timestamp with time zone,
    last_gap_seconds double precision,
    CONSTRAINT service_clock_one_row CHECK ((id = 1))
);

CREATE TABLE public.workers (
    workspace_id uuid NOT NULL,
    worker_id text NOT NULL,
    host text DEFAULT ''::text NOT NULL,
    version text DEFAULT ''::text NOT NULL,
    queues text[] DEFAULT '{}'::text[] NOT NULL,
    slots integer DEFAULT 0 NOT NULL,
    slots_busy integer DEFAULT 0 NOT NULL,
    started_at timestamp with time zone,
    first_seen_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    fenced_at timestamp with time zone
);

CREATE TABLE public.workspaces (
    id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_prefix_key UNIQUE (prefix);

ALTER TABLE ONLY public.audit_events
    ADD CONSTRAINT audit_events_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.definition_versions
    ADD CONSTRAINT definition_versions_pkey PRIMARY KEY (definition_id, version);

ALTER TABLE ONLY public.definitions
    ADD CONSTRAINT definitions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.queues
    ADD CONSTRAINT queues_pkey PRIMARY KEY (workspace_id, name);

ALTER TABLE ONLY public.run_attempts
    ADD CONSTRAINT run_attempts_pkey PRIMARY KEY (run_id, number);

ALTER TABLE ONLY public.run_configs
    ADD CONSTRAINT run_configs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.run_dependencies
    ADD CONSTRAINT run_dependencies_pkey PRIMARY KEY (run_id, depends_on);

ALTER TABLE ONLY public.run_log_chunks
    ADD CONSTRAINT run_log_chunks_pkey PRIMARY KEY (run_id, attempt, first_seq);

ALTER TABLE ONLY public.run_results
    ADD CONSTRAINT run_results_pkey PRIMARY KEY (run_id, attempt, name);

ALTER TABLE ONLY public.run_specs
    ADD CONSTRAINT run_specs_pkey PRIMARY KEY (run_id);

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.schedule_fires
    ADD CONSTRAINT schedule_fires_pkey PRIMARY KEY (schedule_id, fire_time);

ALTER TABLE ONLY public.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.service_clock
    ADD CONSTRAINT service_clock_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_pkey PRIMARY KEY (workspace_id, worker_id);

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_name_key UNIQUE (name);

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_pkey PRIMARY KEY (id);

CREATE INDEX api_tokens_workspace_idx ON public.api_tokens USING btree (workspace_id, created_at DESC, id DESC);

CREATE INDEX audit_events_workspace_idx ON public.audit_events USING btree (workspace_id, id DESC);

CREATE INDEX definition_versions_job_type_idx ON public.definition_versions USING btree (job_type);

CREATE UNIQUE INDEX definitions_workspace_name_key ON public.definitions USING btree (workspace_id, name) WHERE (deleted_at IS NULL);

CREATE UNIQUE INDEX retention_policies_key ON public.retention_policies USING btree (workspace_id, COALESCE(definition_id, '00000000-0000-0000-0000-000000000000'::uuid));

CREATE INDEX run_dependencies_open_idx ON public.run_dependencies USING btree (depends_on) WHERE (NOT met);

CREATE INDEX run_specs_config_idx ON public.run_specs USING btree (config_id);

CREATE INDEX runs_array_open_idx ON public.runs USING btree (id) WHERE (status = 'ARRAY'::text);

CREATE INDEX runs_definition_idx ON public.runs USING btree (definition_id, submitted_at DESC, id DESC);

CREATE INDEX runs_ended_idx ON public.runs USING btree (ended_at) WHERE (status = ANY (ARRAY['SUCCEEDED'::text, 'FAILED'::text, 'CANCELLED'::text]));

CREATE INDEX runs_lease_expiry_idx ON public.runs USING btree (lease_expires_at) WHERE (status = 'RUNNING'::text);

CREATE INDEX runs_parent_idx ON public.runs USING btree (parent_id, array_index) WHERE (parent_id IS NOT NULL);

CREATE INDEX runs_pending_idx ON public.runs USING btree (workspace_id, queue, priority DESC, submitted_at, id) WHERE (status = 'PENDING'::text);

CREATE UNIQUE INDEX runs_request_id_key ON public.runs USING btree (workspace_id, request_id) WHERE (request_id IS NOT NULL);

CREATE INDEX runs_schedule_idx ON public.runs USING btree (schedule_id, submitted_at DESC, id DESC) WHERE (schedule_id IS NOT NULL);

CREATE INDEX runs_schedule_unfinished_idx ON public.runs USING btree (schedule_id) WHERE ((schedule_id IS NOT NULL) AND (status = ANY (ARRAY['PENDING'::text, 'RUNNING'::text])));

CREATE INDEX runs_waiting_idx ON public.runs USING btree (id) WHERE (status = 'WAITING'::text);

CREATE INDEX runs_workspace_submitted_idx ON public.runs USING btree (workspace_id, submitted_at DESC, id DESC);

CREATE UNIQUE INDEX schedule_fires_buffered_key ON public.schedule_fires USING btree (schedule_id) WHERE (outcome = 'BUFFERED'::text);

CREATE INDEX schedule_fires_run_idx ON public.schedule_fires USING btree (run_id) WHERE (run_id IS NOT NULL);

CREATE INDEX schedules_due_idx ON public.schedules USING btree (next_fire_at) WHERE (NOT paused);

CREATE INDEX schedules_workspace_idx ON public.schedules USING btree (workspace_id, created_at DESC, id DESC);

CREATE INDEX workers_seen_idx ON public.workers USING btree (workspace_id, last_seen_at DESC);

CREATE TRIGGER runs_queue_exists AFTER INSERT ON public.runs REFERENCING NEW TABLE AS new_runs FOR EACH STATEMENT EXECUTE FUNCTION public.runs_queue_exists();

CREATE TRIGGER workspaces_default_queue AFTER INSERT ON public.workspaces FOR EACH ROW EXECUTE FUNCTION public.queues_default_for_workspace();

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);

ALTER TABLE ONLY public.definition_versions
    ADD CONSTRAINT definition_versions_definition_fkey FOREIGN KEY (definition_id) REFERENCES public.definitions(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.definitions
    ADD CONSTRAINT definitions_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);

ALTER TABLE ONLY public.queues
    ADD CONSTRAINT queues_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);

ALTER TABLE ONLY public.retention_policies
    ADD CONSTRAINT retention_policies_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);

ALTER TABLE ONLY public.run_attempts
    ADD CONSTRAINT run_attempts_run_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.run_dependencies
    ADD CONSTRAINT run_dependencies_run_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);

ALTER TABLE ONLY public.schedule_fires
    ADD CONSTRAINT schedule_fires_schedule_fkey FOREIGN KEY (schedule_id) REFERENCES public.schedules(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.schedules
    ADD CONSTRAINT schedules_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);

ALTER TABLE ONLY public.workers
    ADD CONSTRAINT workers_workspace_id_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);
