"""The worker protocol's words: the fence every worker write carries, a lease, how an
attempt ended (reported by its worker, or decided for it), and what that does to its run.

Pure: the database applies these decisions (db/attempt_end.py), the API and the rescuer
only ask for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.jobs import (
    DEFAULT_RETRY_DELAY_SECONDS,
    ExitCodeAction,
    JobConfig,
    RetryStrategy,
    Secrets,
)
from batchyard.server.domain.runs import RunReason, RunStatus

MAX_MESSAGE = 2000
"""Characters of a worker's message kept with its attempt."""


@dataclass(frozen=True)
class Fence:
    """What every worker write after the lease is fenced by."""

    run: UUID
    attempt: int
    lease_id: UUID
    workspace_id: UUID | None = None
    """The caller's workspace: another workspace's run is as missing. None: any (the
    rescuer's own fences)."""


@dataclass(frozen=True)
class Lease:
    """A run handed to a worker: its attempt, lease and everything needed to execute it."""

    run: UUID
    attempt: int
    lease_id: UUID
    expires: datetime
    config: JobConfig
    secrets: Secrets
    payload: bytes
    definition_name: str
    workspace: str


@dataclass(frozen=True)
class Applied:
    """The run after the end of an attempt was applied."""

    status: RunStatus
    next_attempt_time: datetime | None
    queue: str


@dataclass(frozen=True)
class Rescued:
    """An attempt whose lease expired, ended by the rescuer."""

    run: UUID
    attempt: int
    worker_id: str
    status: RunStatus
    queue: str


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as its worker reports it."""

    status: RunStatus
    reason: RunReason
    exit_code: int | None
    message: str
    peak_memory_bytes: int | None = None
    """Measured by the worker; None: not measured."""
    cpu_usec: int | None = None
    """The job's CPU time in microseconds, measured by the worker; None: not measured."""


@dataclass(frozen=True)
class Next:
    """The run's state after an attempt ended."""

    status: RunStatus
    reason: RunReason
    retry: bool = False
    # Seconds until the next attempt may start (when retry).
    delay_seconds: float = 0.0
    # The budget the retry is charged to: "job" (num_retries) or "infra" (num_infra_retries).
    budget: str = ""


def _retryable(outcome: Outcome, strategy: RetryStrategy) -> bool:
    if outcome.reason == RunReason.TIMEOUT:
        return strategy.retry_on_timeout
    if outcome.reason == RunReason.NON_ZERO_EXIT_CODE and outcome.exit_code is not None:
        for rule in strategy.exit_code_rules:
            if outcome.exit_code in rule.exit_codes:
                return rule.action == ExitCodeAction.RETRY
    return True


def after_attempt(
    outcome: Outcome,
    strategy: RetryStrategy,
    retries_used: int,
    cancel_requested: bool,
    infra_retries_used: int = 0,
) -> Next:
    """Decide what an ended attempt does to its run (the retry strategy applies here).
    An attempt lost with its worker is the infrastructure's fault: it is retried at once
    from `num_infra_retries`, and only once those are spent from `num_retries`."""
    if outcome.status == RunStatus.SUCCEEDED:
        return Next(RunStatus.SUCCEEDED, RunReason.NONE)
    if outcome.status == RunStatus.CANCELLED or cancel_requested:
        return Next(RunStatus.CANCELLED, RunReason.CANCELLED_BY_USER)
    lost = outcome.reason == RunReason.WORKER_LOST
    if lost and infra_retries_used < strategy.num_infra_retries:
        return Next(RunStatus.PENDING, RunReason.IN_QUEUE, retry=True, budget="infra")
    if _retryable(outcome, strategy) and retries_used < strategy.num_retries:
        if lost:
            # The job did nothing wrong: back in the queue at once.
            return Next(RunStatus.PENDING, RunReason.IN_QUEUE, retry=True, budget="job")
        delay = strategy.delay_seconds
        return Next(
            RunStatus.PENDING,
            RunReason.WAITING_FOR_RETRY,
            retry=True,
            delay_seconds=DEFAULT_RETRY_DELAY_SECONDS if delay is None else delay,
            budget="job",
        )
    return Next(RunStatus.FAILED, outcome.reason)


def validate_outcome(outcome: Outcome) -> list[FieldViolation]:
    """What a worker may report: SUCCEEDED, FAILED with a failure reason, or CANCELLED."""
    failure_reasons = {
        RunReason.NON_ZERO_EXIT_CODE,
        RunReason.TIMEOUT,
        RunReason.SOURCE_UNAVAILABLE,
        RunReason.RESULT_UPLOAD_FAILED,
    }
    if outcome.status == RunStatus.SUCCEEDED:
        ok = outcome.reason == RunReason.NONE
    elif outcome.status == RunStatus.FAILED:
        ok = outcome.reason in failure_reasons
    elif outcome.status == RunStatus.CANCELLED:
        ok = outcome.reason in (RunReason.NONE, RunReason.CANCELLED_BY_USER)
    else:
        return [FieldViolation("status", "must be SUCCEEDED, FAILED or CANCELLED")]
    if not ok:
        return [FieldViolation("reason", f"not a reason for {outcome.status.value}")]
    if outcome.reason == RunReason.NON_ZERO_EXIT_CODE and not outcome.exit_code:
        return [FieldViolation("exit_code", "required (non-zero) for NON_ZERO_EXIT_CODE")]
    return []


def reported_outcome(
    status: RunStatus, reason: RunReason, exit_code: int | None, message: str, progress: int | None
) -> Outcome:
    """The outcome a worker reports (CompleteRun) with its last progress, checked;
    InvalidArgument otherwise. A cancelled attempt was always cancelled by its user."""
    if status == RunStatus.CANCELLED:
        reason = RunReason.CANCELLED_BY_USER
    outcome = Outcome(status, reason, exit_code, message[:MAX_MESSAGE])
    violations = validate_outcome(outcome)
    if progress is not None and not 0 <= progress <= 100:
        violations.append(FieldViolation("progress", "0 to 100"))
    if violations:
        raise InvalidArgument(violations)
    return outcome


def worker_lost(worker_id: str) -> Outcome:
    """The outcome of an attempt whose lease expired."""
    return Outcome(
        RunStatus.FAILED, RunReason.WORKER_LOST, None, f"worker {worker_id} lost: lease expired"
    )


def released(message: str, cancel_requested: bool) -> tuple[Outcome, Next]:
    """An attempt handed back unfinished (ReleaseRun), and its run's next state: leasable
    at once, with no retry spent, unless its user asked to cancel it."""
    outcome = Outcome(
        RunStatus.PENDING,
        RunReason.IN_QUEUE,
        None,
        message[:MAX_MESSAGE] or "released by its worker",
    )
    if cancel_requested:
        return outcome, Next(RunStatus.CANCELLED, RunReason.CANCELLED_BY_USER)
    return outcome, Next(RunStatus.PENDING, RunReason.IN_QUEUE)
