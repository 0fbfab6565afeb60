"""How an attempt ended, in the terms of ``CompleteRun``.

The worker only reports: exit 0 is SUCCEEDED, any other exit FAILED with the exit code, a
timeout FAILED/TIMEOUT, a cancel CANCELLED/CANCELLED_BY_USER, a source that could not be made
ready FAILED/SOURCE_UNAVAILABLE. Whether the run is retried is the server's decision.

An outcome also carries the result files the attempt stored. When storing them failed, a
job that succeeded ends FAILED/RESULT_UPLOAD_FAILED (no results reported); a job that had
failed or was cancelled keeps its status and reason, and its message says why no results
were stored.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, replace

from batchyard.v1 import run_pb2


class StopReason(enum.Enum):
    """Why the worker stopped a job before it exited by itself."""

    TIMEOUT = "timeout"
    CANCEL = "cancelled by user"
    LEASE_LOST = "lease lost"
    SHUTDOWN = "worker shutting down"


@dataclass(frozen=True)
class ResultFile:
    """One result file in the artifact store."""

    name: str
    """The path relative to the output directory, "/"-separated."""
    size: int
    sha256: str
    """Lowercase hex."""
    media_type: str


@dataclass(frozen=True)
class Usage:
    """What an attempt's processes used; None: not measured."""

    peak_memory_bytes: int | None = None
    cpu_seconds: float | None = None


@dataclass(frozen=True)
class Outcome:
    """The end of one attempt."""

    status: run_pb2.RunStatus.ValueType
    reason: run_pb2.RunReason.ValueType
    message: str
    exit_code: int | None = None
    progress: int | None = None
    stopped: StopReason | None = None
    """Set when the worker stopped the job itself (timeout, cancel, lease lost, shutdown)."""
    results: tuple[ResultFile, ...] = ()
    """The result files stored in the artifact store."""
    usage: Usage = Usage()
    """Peak memory and CPU time of the job's processes (unknown if it never started)."""

    @property
    def reportable(self) -> bool:
        """Whether to report it with CompleteRun (not after lease loss or shutdown)."""
        return self.stopped not in (StopReason.LEASE_LOST, StopReason.SHUTDOWN)


def format_seconds(seconds: float) -> str:
    """3600 → "1h", 90 → "1m30s", 1.5 → "1.5s"."""
    if seconds != int(seconds) or seconds < 60:
        return f"{seconds:g}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)


def exited(returncode: int, progress: int | None) -> Outcome:
    """The job's leader exited by itself (``returncode`` < 0: killed by that signal)."""
    if returncode == 0:
        return Outcome(
            run_pb2.RUN_STATUS_SUCCEEDED,
            run_pb2.RUN_REASON_UNSPECIFIED,
            "exited with code 0",
            exit_code=0,
            progress=progress,
        )
    if returncode > 0:
        return Outcome(
            run_pb2.RUN_STATUS_FAILED,
            run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE,
            f"exited with code {returncode}",
            exit_code=returncode,
            progress=progress,
        )
    # Killed by a signal it did not get from the worker (OOM killer, a crash): reported the
    # way shells, Docker and Kubernetes do, 128 + the signal number (137 for SIGKILL).
    return Outcome(
        run_pb2.RUN_STATUS_FAILED,
        run_pb2.RUN_REASON_NON_ZERO_EXIT_CODE,
        f"killed by signal {signal_name(-returncode)} (exit code {128 - returncode})",
        exit_code=128 - returncode,
        progress=progress,
    )


def stopped(reason: StopReason, *, timeout: float, progress: int | None) -> Outcome:
    """The worker stopped the job (no exit code is reported)."""
    match reason:
        case StopReason.TIMEOUT:
            return Outcome(
                run_pb2.RUN_STATUS_FAILED,
                run_pb2.RUN_REASON_TIMEOUT,
                f"killed after timeout {format_seconds(timeout)}",
                progress=progress,
                stopped=reason,
            )
        case StopReason.CANCEL:
            return Outcome(
                run_pb2.RUN_STATUS_CANCELLED,
                run_pb2.RUN_REASON_CANCELLED_BY_USER,
                "cancelled by user",
                progress=progress,
                stopped=reason,
            )
        case StopReason.LEASE_LOST:
            return Outcome(
                run_pb2.RUN_STATUS_FAILED,
                run_pb2.RUN_REASON_WORKER_LOST,
                "stopped: the worker lost its lease",
                progress=progress,
                stopped=reason,
            )
        case StopReason.SHUTDOWN:
            return Outcome(
                run_pb2.RUN_STATUS_PENDING,
                run_pb2.RUN_REASON_IN_QUEUE,
                "stopped: the worker is shutting down",
                progress=progress,
                stopped=reason,
            )


def with_results(outcome: Outcome, results: tuple[ResultFile, ...]) -> Outcome:
    """The outcome, carrying the result files stored."""
    return replace(outcome, results=results)


def result_upload_failed(outcome: Outcome, cause: str) -> Outcome:
    """Storing the results failed: a success becomes FAILED/RESULT_UPLOAD_FAILED; any other
    ending keeps its status and reason. No results are reported either way."""
    message = f"results not stored: {cause}"
    if outcome.status == run_pb2.RUN_STATUS_SUCCEEDED:
        return replace(
            outcome,
            status=run_pb2.RUN_STATUS_FAILED,
            reason=run_pb2.RUN_REASON_RESULT_UPLOAD_FAILED,
            message=f"{outcome.message}, but {message}",
            results=(),
        )
    return replace(outcome, message=f"{outcome.message}; {message}", results=())


def source_unavailable(message: str, progress: int | None = None) -> Outcome:
    """The source or program could not be made ready; the job never started."""
    return Outcome(
        run_pb2.RUN_STATUS_FAILED, run_pb2.RUN_REASON_SOURCE_UNAVAILABLE, message, progress=progress
    )


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)
