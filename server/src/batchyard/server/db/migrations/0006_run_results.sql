-- Result assets: the files an attempt left in its output directory, as its worker stored
-- them in the artifact store (the bytes live there; a row is the listing). A run's results
-- are those of its current attempt.

CREATE TABLE run_results (
    run_id     uuid        NOT NULL,
    attempt    integer     NOT NULL,
    name       text        NOT NULL,
    size_bytes bigint      NOT NULL,
    sha256     text        NOT NULL,
    media_type text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT run_results_pkey PRIMARY KEY (run_id, attempt, name),
    CONSTRAINT run_results_size_check CHECK (size_bytes >= 0),
    CONSTRAINT run_results_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$')
);
