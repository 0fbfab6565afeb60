"""Runs: statuses and reasons, and submission (what happens after each attempt: attempts.py)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from batchyard.server.domain.errors import FieldViolation
from batchyard.server.domain.graph import ArraySummary, Dependency
from batchyard.server.domain.jobs import (
    JobConfig,
    RetryStrategy,
    Secrets,
    with_defaults,
)

MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_REQUEST_ID = 200
MAX_BATCH = 10_000


class RunStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class RunReason(StrEnum):
    NONE = ""
    RECENTLY_SUBMITTED = "RECENTLY_SUBMITTED"
    IN_QUEUE = "IN_QUEUE"
    WAITING_ON_DEPENDENCIES = "WAITING_ON_DEPENDENCIES"
    WAITING_FOR_RETRY = "WAITING_FOR_RETRY"
    NON_ZERO_EXIT_CODE = "NON_ZERO_EXIT_CODE"
    TIMEOUT = "TIMEOUT"
    WORKER_LOST = "WORKER_LOST"
    SOURCE_UNAVAILABLE = "SOURCE_UNAVAILABLE"
    DEPENDENCY_FAILED = "DEPENDENCY_FAILED"
    CANCELLED_BY_USER = "CANCELLED_BY_USER"
    RESULT_UPLOAD_FAILED = "RESULT_UPLOAD_FAILED"
    QUEUE_PAUSED = "QUEUE_PAUSED"
    QUEUE_AT_LIMIT = "QUEUE_AT_LIMIT"
    ARRAY_CHILD_FAILED = "ARRAY_CHILD_FAILED"
    CANCELLED_BY_SCHEDULE = "CANCELLED_BY_SCHEDULE"


@dataclass(frozen=True)
class Attempt:
    number: int
    worker_id: str
    start_time: datetime
    end_time: datetime | None
    status: RunStatus
    reason: RunReason
    exit_code: int | None
    message: str
    peak_memory_bytes: int | None = None
    cpu_usec: int | None = None
    retry_budget: str = ""
    """What the retry after it was charged to: "", "job" or "infra"."""


@dataclass(frozen=True)
class Run:
    uuid: UUID
    workspace: str
    definition_uuid: UUID | None
    definition_name: str
    definition_version: int
    config: JobConfig
    secrets: Secrets
    status: RunStatus
    reason: RunReason
    message: str
    cancel_requested: bool
    progress: int
    attempts: tuple[Attempt, ...]
    num_retries_used: int
    payload_size: int
    request_id: str
    submit_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    next_attempt_time: datetime | None
    revision: int
    # PENDING runs ahead of this one in its queue (approximate), when that is why it waits.
    queue_position: int | None = None
    parent_uuid: UUID | None = None
    array_index: int = 0
    array_size: int = 0
    array_summary: ArraySummary | None = None
    depends_on: tuple[Dependency, ...] = ()
    dependencies_waiting: int = 0
    schedule_uuid: UUID | None = None
    """The schedule that submitted the run, and for which fire time."""
    schedule_fire_time: datetime | None = None
    tasks: dict[str, Any] | None = None
    """The latest task summary the job reported (TaskSummary's JSON form), if any."""
    num_infra_retries_used: int = 0


@dataclass(frozen=True)
class Overrides:
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float | None = None
    retry_strategy: RetryStrategy | None = None
    queue: str = ""
    priority: int | None = None


def apply_overrides(config: JobConfig, secrets: Secrets, o: Overrides) -> tuple[JobConfig, Secrets]:
    """The effective configuration of a run: the definition's, changed per run."""
    merged = replace(
        config,
        args=o.args or config.args,
        env={**config.env, **o.env},
        timeout_seconds=o.timeout_seconds
        if o.timeout_seconds is not None
        else config.timeout_seconds,
        retry_strategy=o.retry_strategy if o.retry_strategy is not None else config.retry_strategy,
        queue=o.queue or config.queue,
        priority=o.priority if o.priority is not None else config.priority,
    )
    return with_defaults(merged), replace(secrets, env={**secrets.env, **o.secret_env})


@dataclass(frozen=True)
class NewRun:
    """A validated submission, ready to store."""

    uuid: UUID
    definition_uuid: UUID | None
    definition_name: str
    definition_version: int
    config: JobConfig
    secrets: Secrets
    payload: bytes
    request_id: str


def validate_payload_and_key(payload: bytes, request_id: str) -> list[FieldViolation]:
    """Violations of a submission's own fields (its configuration is checked apart)."""
    out = []
    if len(payload) > MAX_PAYLOAD_BYTES:
        out.append(FieldViolation("payload", f"{len(payload)} bytes; at most 1 MiB"))
    if len(request_id) > MAX_REQUEST_ID or any(not c.isprintable() for c in request_id):
        out.append(FieldViolation("request_id", "at most 200 printable characters"))
    return out
