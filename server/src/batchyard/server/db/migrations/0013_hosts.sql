-- Per-attempt accounting, as the attempt's worker measured it (CompleteRun): the peak
-- memory of the job's processes in bytes and their CPU time in microseconds. NULL: not
-- measured (the job never started, its worker was lost, an older worker).

ALTER TABLE run_attempts
    ADD COLUMN peak_memory_bytes bigint,
    ADD COLUMN cpu_usec bigint,
    ADD CONSTRAINT run_attempts_peak_memory_check CHECK (peak_memory_bytes >= 0),
    ADD CONSTRAINT run_attempts_cpu_usec_check CHECK (cpu_usec >= 0);
