-- Access: API tokens bound to one workspace with a role (only a hash of each secret is
-- kept), the audit trail, and a claim index that starts with the workspace (a worker
-- token leases only its own workspace's runs).

CREATE TABLE api_tokens (
    id           uuid        NOT NULL,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id),
    name         text        NOT NULL,
    role         text        NOT NULL,
    -- The public start of the secret ("byt_" + 12 characters): how a secret is looked up.
    prefix       text        NOT NULL,
    -- SHA-256 of the whole secret (secrets are random, 256 bits: no slow hash needed).
    secret_hash  bytea       NOT NULL,
    created_by   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_prefix_key UNIQUE (prefix),
    CONSTRAINT api_tokens_role_check CHECK (role IN ('ADMIN', 'MEMBER', 'VIEWER', 'WORKER'))
);
CREATE INDEX api_tokens_workspace_idx ON api_tokens (workspace_id, created_at DESC, id DESC);

CREATE TABLE audit_events (
    id           bigint      GENERATED ALWAYS AS IDENTITY,
    workspace_id uuid        NOT NULL,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    object_kind  text        NOT NULL,
    object_id    text        NOT NULL,
    detail       text        NOT NULL DEFAULT '',
    CONSTRAINT audit_events_pkey PRIMARY KEY (id)
);
CREATE INDEX audit_events_workspace_idx ON audit_events (workspace_id, id DESC);

DROP INDEX runs_pending_idx;
CREATE INDEX runs_pending_idx ON runs (workspace_id, queue, priority DESC, submitted_at, id)
    WHERE status = 'PENDING';
