-- The schema the migrations produce, from scratch (pg_dump --schema-only, normalised).
-- Generated: uv run python -m tests.schema_dump --write. Never edit by hand.

CREATE TABLE public.definition_versions (
    definition_id uuid NOT NULL,
    version bigint NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    job_type text NOT NULL,
    config jsonb NOT NULL,
    secrets jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT definition_versions_job_type_check CHECK ((job_type = ANY (ARRAY['PYTHON'::text, 'SQL'::text, 'SHELL'::text])))
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

CREATE TABLE public.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

CREATE TABLE public.workspaces (
    id uuid NOT NULL,
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

ALTER TABLE ONLY public.definition_versions
    ADD CONSTRAINT definition_versions_pkey PRIMARY KEY (definition_id, version);

ALTER TABLE ONLY public.definitions
    ADD CONSTRAINT definitions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_name_key UNIQUE (name);

ALTER TABLE ONLY public.workspaces
    ADD CONSTRAINT workspaces_pkey PRIMARY KEY (id);

CREATE INDEX definition_versions_job_type_idx ON public.definition_versions USING btree (job_type);

CREATE UNIQUE INDEX definitions_workspace_name_key ON public.definitions USING btree (workspace_id, name) WHERE (deleted_at IS NULL);

ALTER TABLE ONLY public.definition_versions
    ADD CONSTRAINT definition_versions_definition_fkey FOREIGN KEY (definition_id) REFERENCES public.definitions(id) ON DELETE CASCADE;

ALTER TABLE ONLY public.definitions
    ADD CONSTRAINT definitions_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES public.workspaces(id);
