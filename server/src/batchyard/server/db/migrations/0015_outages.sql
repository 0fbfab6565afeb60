-- Outages are not the job's fault: the service clock every replica ticks (a gap in its
-- ticks is an outage nobody could renew through), the fleet of workers with their
-- fencing state, and a separate retry budget for infrastructure failures.

CREATE TABLE service_clock (
    id           integer     NOT NULL,
    -- The last time any replica's maintenance reached the database (its clock).
    last_tick_at timestamptz,
    -- The last outage found in the ticks, and how much every lease was extended by.
    last_gap_at       timestamptz,
    last_gap_seconds  double precision,
    CONSTRAINT service_clock_pkey PRIMARY KEY (id),
    CONSTRAINT service_clock_one_row CHECK (id = 1)
);
INSERT INTO service_clock (id) VALUES (1);

CREATE TABLE workers (
    workspace_id uuid        NOT NULL REFERENCES workspaces (id),
    worker_id    text        NOT NULL,
    host         text        NOT NULL DEFAULT '',
    version      text        NOT NULL DEFAULT '',
    queues       text[]      NOT NULL DEFAULT '{}',
    slots        integer     NOT NULL DEFAULT 0,
    slots_busy   integer     NOT NULL DEFAULT 0,
    started_at   timestamptz,
    first_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Set when the rescuer expired one of its leases: it gets no work (open long-polls
    -- answer empty) until a call made after this proves it alive again.
    fenced_at    timestamptz,
    CONSTRAINT workers_pkey PRIMARY KEY (workspace_id, worker_id)
);
CREATE INDEX workers_seen_idx ON workers (workspace_id, last_seen_at DESC);

ALTER TABLE runs ADD COLUMN num_infra_retries_used integer NOT NULL DEFAULT 0;
-- Which budget the retry after this attempt was charged to: '' (none), 'job', 'infra'.
ALTER TABLE run_attempts ADD COLUMN retry_budget text NOT NULL DEFAULT '';
