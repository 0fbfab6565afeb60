"""The words of an attempt's system entries and of its outcome's message."""

from __future__ import annotations

import shlex
from dataclasses import replace

from batchyard.v1 import job_pb2, run_pb2
from batchyard.worker.execution.sql_targets import describe_target
from batchyard.worker.outcome import Outcome, StopReason
from batchyard.worker.output.collector import Level
from batchyard.worker.output.masking import Masker
from batchyard.worker.output.tail import TailSink
from batchyard.worker.sources.port import source_location

_STOP_MESSAGES = {
    StopReason.CANCEL: "cancel requested by a user",
    StopReason.LEASE_LOST: "the worker lost the run's lease",
    StopReason.SHUTDOWN: "the worker is shutting down (the run is handed back)",
    StopReason.TIMEOUT: "timeout reached",
}


def stop_message(reason: StopReason) -> str:
    return _STOP_MESSAGES[reason]


def program(config: job_pb2.JobConfig) -> str:
    """The file or command the job runs, as the user named it."""
    return source_location(config) if config.HasField("source") else config.source_location


def describe_job(config: job_pb2.JobConfig) -> str:
    """``shell job: sh -c 'echo hi'``; a SQL job names its target (never its DSN)."""
    kind = job_pb2.JobType.Name(config.type).removeprefix("JOB_TYPE_").lower()
    command = shlex.join([program(config), *config.args])
    if config.type == job_pb2.JOB_TYPE_SQL:
        return f"{kind} job: {command} against {describe_target(config.sql_target)}"
    if config.type == job_pb2.JOB_TYPE_INGEST:
        into = f"{config.ingest.table} of {describe_target(config.sql_target)}"
        dry = " (dry run)" if config.ingest.dry_run else ""
        return f"ingest job{dry}: {config.ingest.input.uri} into {into}"
    return f"{kind} job: {command}"


def started_message(run: str, attempt: int, worker_id: str) -> str:
    where = f" on worker {worker_id}" if worker_id else ""
    return f"attempt {attempt} of run {run} started{where}"


def with_stderr(outcome: Outcome, tail: TailSink) -> Outcome:
    """A failed attempt's message quotes the job's last stderr lines."""
    if outcome.status != run_pb2.RUN_STATUS_FAILED:
        return outcome
    if outcome.reason == run_pb2.RUN_REASON_RESULT_UPLOAD_FAILED:
        return outcome  # the job did not fail: its stderr says nothing about why
    quoted = tail.stderr_summary()
    return replace(outcome, message=f"{outcome.message}: {quoted}") if quoted else outcome


def masked(outcome: Outcome, masker: Masker | None) -> Outcome:
    """The outcome's message without the job's secrets (a source error may quote them)."""
    return outcome if masker is None else replace(outcome, message=masker.mask(outcome.message))


def ending_level(outcome: Outcome) -> Level:
    if outcome.status == run_pb2.RUN_STATUS_SUCCEEDED:
        return Level.INFO
    return Level.ERROR if outcome.status == run_pb2.RUN_STATUS_FAILED else Level.WARNING
