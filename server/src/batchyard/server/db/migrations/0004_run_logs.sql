-- Run logs, stored the way workers send them: batches of consecutive entries per attempt.
-- A batch is one row (serialized batchyard.v1 LogEntry messages), so storing a line costs
-- no per-line SQL; each seq is stored exactly once (an attempt's `log_seq` is how far its
-- log is stored without a gap, and a batch only extends it).

ALTER TABLE run_attempts ADD COLUMN log_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE run_log_chunks (
    run_id    uuid    NOT NULL,
    attempt   integer NOT NULL,
    first_seq bigint  NOT NULL,
    last_seq  bigint  NOT NULL,
    -- A serialized batchyard.v1.TailLogsResponse holding the entries first_seq..last_seq.
    entries   bytea   NOT NULL,
    CONSTRAINT run_log_chunks_pkey PRIMARY KEY (run_id, attempt, first_seq),
    CONSTRAINT run_log_chunks_seq_check CHECK (first_seq >= 1 AND last_seq >= first_seq)
);
