-- INGEST jobs, and every run's task summary (issue 15).
ALTER TABLE definition_versions DROP CONSTRAINT definition_versions_job_type_check;
ALTER TABLE definition_versions ADD CONSTRAINT definition_versions_job_type_check
    CHECK (job_type IN ('PYTHON', 'SQL', 'SHELL', 'INGEST'));
-- The latest TaskSummary the run's job reported (protobuf JSON form); NULL until it reports.
ALTER TABLE runs ADD COLUMN tasks jsonb;
