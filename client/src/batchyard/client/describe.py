"""Runs, log entries and sizes in words, as the SDK and the command line show them.

`Status` and `Reason` name a run's status and reason as plain strings ("failed",
"non_zero_exit_code") for code that compares them; the `*_text` functions say them for
people ("failed (non-zero exit code)").
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from batchyard.client.core.requests import LEVELS as LEVELS
from batchyard.client.core.requests import STATUSES as STATUSES
from batchyard.client.core.requests import STREAMS as STREAMS
from batchyard.v1 import log_pb2, run_pb2, task_pb2


class Status(enum.StrEnum):
    """A run's (or an attempt's) status, as a string: ``run.status() == "failed"``."""

    UNSPECIFIED = "unspecified"
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def of(cls, value: run_pb2.RunStatus.ValueType) -> Status:
        """The Status of a `batchyard.v1.RunStatus` value."""
        name = run_pb2.RunStatus.Name(value) if value in run_pb2.RunStatus.values() else ""
        return cls.__members__.get(name.removeprefix("RUN_STATUS_"), cls.UNSPECIFIED)

    @property
    def finished(self) -> bool:
        """Whether nothing will change the run any more (succeeded, failed, cancelled)."""
        return self in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


class Reason(enum.StrEnum):
    """Why a run (or attempt) is in its status, as a string: ``run.reason == "timeout"``."""

    UNSPECIFIED = "unspecified"
    RECENTLY_SUBMITTED = "recently_submitted"
    IN_QUEUE = "in_queue"
    WAITING_ON_DEPENDENCIES = "waiting_on_dependencies"
    WAITING_FOR_RETRY = "waiting_for_retry"
    NON_ZERO_EXIT_CODE = "non_zero_exit_code"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    SOURCE_UNAVAILABLE = "source_unavailable"
    DEPENDENCY_FAILED = "dependency_failed"
    CANCELLED_BY_USER = "cancelled_by_user"
    RESULT_UPLOAD_FAILED = "result_upload_failed"
    QUEUE_PAUSED = "queue_paused"
    QUEUE_AT_LIMIT = "queue_at_limit"
    ARRAY_CHILD_FAILED = "array_child_failed"

    @classmethod
    def of(cls, value: run_pb2.RunReason.ValueType) -> Reason:
        """The Reason of a `batchyard.v1.RunReason` value (UNSPECIFIED if unknown)."""
        name = run_pb2.RunReason.Name(value) if value in run_pb2.RunReason.values() else ""
        return cls.__members__.get(name.removeprefix("RUN_REASON_"), cls.UNSPECIFIED)


def _name(names: Mapping[str, int], value: int) -> str:
    """The name of `value` in `names`, or '-' when unset or unknown."""
    return next((name for name, known in names.items() if known == value), "-")


def status_text(status: run_pb2.RunStatus.ValueType) -> str:
    """'pending', 'running', ..., or '-' when unset or unknown."""
    return _name(STATUSES, status)


def reason_text(reason: run_pb2.RunReason.ValueType) -> str:
    """'in queue', 'non-zero exit code', ...; '' for no reason."""
    if reason == run_pb2.RUN_REASON_UNSPECIFIED or reason not in run_pb2.RunReason.values():
        return ""
    text = run_pb2.RunReason.Name(reason).removeprefix("RUN_REASON_").lower().replace("_", " ")
    return text.replace("non zero", "non-zero")


def definition_ref(run: run_pb2.Run) -> str:
    """'hello@3' (definition name at the pinned version), or '(ad hoc)'."""
    if not run.definition_uuid:
        return "(ad hoc)"
    return f"{run.definition_name or run.definition_uuid}@{run.definition_version}"


def state_text(run: run_pb2.Run) -> str:
    """The state in a few words: 'pending (in queue)', 'running (attempt 1, 40%)',
    'failed (non-zero exit code)'."""
    details = []
    if run.status == run_pb2.RUN_STATUS_RUNNING:
        if run.attempts:
            details.append(f"attempt {run.attempts[-1].number}")
        if run.progress:
            details.append(f"{run.progress}%")
        if run.cancel_requested:
            details.append("cancel requested")
        if run.HasField("tasks"):
            details.append(tasks_text(run.tasks))
    elif run.status != run_pb2.RUN_STATUS_CANCELLED and reason_text(run.reason):
        details.append(reason_text(run.reason))  # a cancelled run's reason says nothing new
    return status_text(run.status) + (f" ({', '.join(details)})" if details else "")


def tasks_text(tasks: task_pb2.TaskSummary) -> str:
    """The task counts in a line: 'LIST done · LOAD 3/8 done, 2 running, 1 failed · 40%
    (estimated) · 2 errors'."""
    parts = []
    for phase in tasks.phases:
        total = phase.pending + phase.running + phase.done + phase.failed
        if total <= 1 and not phase.failed:
            state = "running" if phase.running else ("done" if phase.done else "pending")
            parts.append(f"{phase.name} {state}")
            continue
        counts = [f"{phase.done}/{total} done"]
        counts += [
            f"{n} {word}" for n, word in ((phase.running, "running"), (phase.failed, "failed")) if n
        ]
        parts.append(f"{phase.name} {', '.join(counts)}")
    percent = f"{tasks.percent_complete}%" + (" (estimated)" if tasks.estimated else "")
    parts.append(percent)
    errors = tasks.error_count or len(tasks.errors)
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    return " · ".join(parts)


def elapsed(seconds: float) -> str:
    """'0:00:03', '1:02:03': hours, minutes, seconds."""
    whole = max(int(seconds), 0)
    return f"{whole // 3600}:{whole % 3600 // 60:02}:{whole % 60:02}"


def one_line(text: str) -> str:
    """The text with every run of whitespace (newlines too) made one space."""
    return " ".join(text.split())


def outcome_lines(run: run_pb2.Run) -> list[str]:
    """How a finished run ended: its status and reason, then for a failed run the last
    attempt's worker, exit code and message."""
    head = f"run {run.uuid} {status_text(run.status)}"
    if run.status != run_pb2.RUN_STATUS_FAILED:
        return [head, f"  {one_line(run.message)}"] if run.message else [head]
    reason = reason_text(run.reason)
    lines = [f"{head}: {reason}" if reason else head]
    if run.attempts:
        last = run.attempts[-1]
        parts = [f"attempt {last.number}"]
        if last.worker_id:
            parts[0] += f" on {last.worker_id}"
        if last.HasField("exit_code"):
            parts.append(f"exit code {last.exit_code}")
        # The worker's "exited with code N" says again what the exit code says.
        if last.message and last.message != f"exited with code {last.exit_code}":
            parts.append(one_line(last.message))
        lines.append("  " + ": ".join(parts))
    elif run.message:
        lines.append(f"  {one_line(run.message)}")
    return lines


def as_datetime(ts: Timestamp) -> datetime | None:
    """The timestamp as an aware UTC datetime, or None when it is unset."""
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def relative_time(when: datetime | None, now: datetime | None = None) -> str:
    """'just now', '42 s ago', '3 min ago', '5 h ago', '2 days ago', or a date if older;
    '-' for None."""
    if when is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - when).total_seconds())
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    if days < 30:
        return "1 day ago" if days == 1 else f"{days} days ago"
    return when.strftime("%Y-%m-%d")


def absolute_time(when: datetime | None, now: datetime | None = None) -> str:
    """'2024-05-01 12:00:03 UTC (3 min ago)'; '-' for None."""
    if when is None:
        return "-"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({relative_time(when, now)})"


def duration(seconds: float) -> str:
    """A compact duration: '90s' → '1m30s', '3600s' → '1h', '0.5s' → '0.5s'."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return "".join(parts)


def size_text(size: int) -> str:
    """'512 B', '1.5 KiB', '3.2 MiB', '1.1 GiB'."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def level_text(level: log_pb2.LogLevel.ValueType) -> str:
    """'DEBUG', 'INFO', 'WARNING', 'ERROR', or '-' when unset or unknown."""
    return _name(LEVELS, level).upper()


def stream_text(stream: log_pb2.LogStream.ValueType) -> str:
    """'stdout', 'stderr', 'system', or '-' when unset or unknown."""
    return _name(STREAMS, stream)


# ANSI colours by level; INFO stays plain.
_COLOURS = {
    log_pb2.LOG_LEVEL_DEBUG: "\x1b[2m",  # dim
    log_pb2.LOG_LEVEL_WARNING: "\x1b[33m",  # yellow
    log_pb2.LOG_LEVEL_ERROR: "\x1b[1;31m",  # bold red
}
_RESET = "\x1b[0m"
_LEVEL_WIDTH = max(len(name) for name in LEVELS)
_STREAM_WIDTH = max(len(name) for name in STREAMS)


def entry_line(entry: log_pb2.LogEntry, *, colour: bool = False) -> str:
    """`HH:MM:SS.mmm [attempt] stream LEVEL message`, the time in UTC, stream and level
    padded so messages line up; with `colour`, level and message coloured by level."""
    when = as_datetime(entry.time)
    clock = "--:--:--.---" if when is None else f"{when:%H:%M:%S}.{when.microsecond // 1000:03}"
    level = level_text(entry.level)
    head = f"{clock} [{entry.attempt}] {stream_text(entry.stream):<{_STREAM_WIDTH}} "
    tail = f"{level:<{_LEVEL_WIDTH}} {entry.message}"
    start = _COLOURS.get(entry.level) if colour else None
    if start is None:
        return head + tail
    return f"{head}{start}{tail}{_RESET}"


def attempt_usage(attempt: run_pb2.Attempt) -> tuple[str, str]:
    """An attempt's peak memory and CPU time as its worker measured them ('64.1 MiB',
    '0.31s'), '-' for what it did not measure."""
    memory = size_text(attempt.peak_memory_bytes) if attempt.HasField("peak_memory_bytes") else "-"
    if not attempt.HasField("cpu_time"):
        return memory, "-"
    seconds = attempt.cpu_time.ToMicroseconds() / 1e6
    return memory, f"{seconds:.2f}s" if seconds < 60 else duration(seconds)
