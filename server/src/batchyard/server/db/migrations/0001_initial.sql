-- Workspaces, and job definitions with every version kept.

CREATE TABLE workspaces (
    id          uuid        NOT NULL,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT workspaces_pkey PRIMARY KEY (id),
    CONSTRAINT workspaces_name_key UNIQUE (name)
);

-- The workspace every request uses until authentication lands.
INSERT INTO workspaces (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'default');

-- One row per definition: its identity and which version is current.
CREATE TABLE definitions (
    id              uuid        NOT NULL,
    workspace_id    uuid        NOT NULL,
    name            text        COLLATE "C" NOT NULL,
    current_version bigint      NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    deleted_at      timestamptz,
    CONSTRAINT definitions_pkey PRIMARY KEY (id),
    CONSTRAINT definitions_workspace_fkey FOREIGN KEY (workspace_id) REFERENCES workspaces (id),
    CONSTRAINT definitions_version_check CHECK (current_version >= 1)
);

-- Names are unique among the live definitions of a workspace; a deleted name is free.
CREATE UNIQUE INDEX definitions_workspace_name_key
    ON definitions (workspace_id, name) WHERE deleted_at IS NULL;

-- Every version of every definition, immutable once written (runs pin one).
CREATE TABLE definition_versions (
    definition_id uuid        NOT NULL,
    version       bigint      NOT NULL,
    name          text        NOT NULL,
    description   text        NOT NULL,
    job_type      text        NOT NULL,
    config        jsonb       NOT NULL,
    secrets       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT definition_versions_pkey PRIMARY KEY (definition_id, version),
    CONSTRAINT definition_versions_definition_fkey
        FOREIGN KEY (definition_id) REFERENCES definitions (id) ON DELETE CASCADE,
    CONSTRAINT definition_versions_job_type_check CHECK (job_type IN ('PYTHON', 'SQL', 'SHELL'))
);

CREATE INDEX definition_versions_job_type_idx ON definition_versions (job_type);
