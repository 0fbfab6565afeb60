"""Runs on the terminal: the list table, the view of one run, and one-line states."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime

from batchyard.client.cli.definition_views import retries_text, type_name
from batchyard.client.cli.render import (
    absolute_time,
    as_datetime,
    data_text,
    duration,
    key_values,
    message_dict,
    relative_time,
    table,
)
from batchyard.v1 import run_pb2

TABLE_HEADERS = ("UUID", "DEFINITION", "STATUS", "REASON", "ATTEMPTS", "SUBMITTED", "ENDED")
ATTEMPT_HEADERS = ("#", "WORKER", "STARTED", "ENDED", "STATUS", "REASON", "EXIT CODE", "MESSAGE")

# Statuses as the command line spells them, e.g. "pending" ↔ RUN_STATUS_PENDING.
STATUSES: dict[str, run_pb2.RunStatus.ValueType] = {
    "pending": run_pb2.RUN_STATUS_PENDING,
    "running": run_pb2.RUN_STATUS_RUNNING,
    "succeeded": run_pb2.RUN_STATUS_SUCCEEDED,
    "failed": run_pb2.RUN_STATUS_FAILED,
    "cancelled": run_pb2.RUN_STATUS_CANCELLED,
}


def status_text(status: run_pb2.RunStatus.ValueType) -> str:
    """'pending', 'running', ..., or '-' when unset or unknown."""
    for name, value in STATUSES.items():
        if value == status:
            return name
    return "-"


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
    elif run.status != run_pb2.RUN_STATUS_CANCELLED and reason_text(run.reason):
        details.append(reason_text(run.reason))  # a cancelled run's reason says nothing new
    return status_text(run.status) + (f" ({', '.join(details)})" if details else "")


def elapsed(seconds: float) -> str:
    """'0:00:03', '1:02:03': hours, minutes, seconds."""
    whole = max(int(seconds), 0)
    return f"{whole // 3600}:{whole % 3600 // 60:02}:{whole % 60:02}"


def runs_table(runs: Sequence[run_pb2.Run], now: datetime) -> str:
    """UUID, DEFINITION, STATUS, REASON, ATTEMPTS, SUBMITTED, ENDED: one row per run."""
    rows = [
        [
            run.uuid,
            definition_ref(run),
            status_text(run.status),
            _reason_cell(run),
            str(len(run.attempts)),
            relative_time(as_datetime(run.submit_time), now),
            relative_time(as_datetime(run.end_time), now),
        ]
        for run in runs
    ]
    return table(TABLE_HEADERS, rows)


def run_output(run: run_pb2.Run, output: str, now: datetime) -> str:
    """One run as `-o` asks: a one-row table, or the Run message as JSON or YAML."""
    if output == "table":
        return runs_table([run], now)
    return data_text(message_dict(run), output)


def _reason_cell(run: run_pb2.Run) -> str:
    if run.cancel_requested and run.status == run_pb2.RUN_STATUS_RUNNING:
        return "cancel requested"
    return reason_text(run.reason) or "-"


def run_details(run: run_pb2.Run, now: datetime) -> str:
    """The run as `Key:  value` lines, then its attempts as a table."""
    config = run.config
    status = status_text(run.status)
    if run.cancel_requested and run.status == run_pb2.RUN_STATUS_RUNNING:
        status += " (cancel requested)"
    pairs = [
        ("UUID", run.uuid),
        ("Status", status),
        ("Reason", reason_text(run.reason) or "-"),
        ("Message", run.message or "-"),
        ("Definition", definition_ref(run)),
        ("Type", type_name(config.type)),
    ]
    if config.args:
        pairs.append(("Args", shlex.join(config.args)))
    if config.env:
        pairs.append(("Env", "\n".join(f"{k}={v}" for k, v in sorted(config.env.items()))))
    if config.secret_env_names:
        pairs.append(("Secret env", ", ".join(config.secret_env_names) + " (values hidden)"))
    timeout = config.timeout.ToTimedelta().total_seconds()
    pairs += [
        ("Queue", config.queue or "-"),
        ("Priority", str(config.priority)),
        ("Timeout", duration(timeout) if config.HasField("timeout") else "1h (default)"),
        ("Retries", retries_text(config.retry_strategy)),
    ]
    if run.num_retries_used:
        pairs.append(("Retries used", str(run.num_retries_used)))
    pairs.append(("Progress", f"{run.progress}%"))
    if run.payload_size:
        pairs.append(("Payload", f"{run.payload_size} bytes"))
    if run.request_id:
        pairs.append(("Request id", run.request_id))
    pairs += [
        ("Submitted", absolute_time(as_datetime(run.submit_time), now)),
        ("Started", absolute_time(as_datetime(run.start_time), now)),
        ("Ended", absolute_time(as_datetime(run.end_time), now)),
    ]
    if run.HasField("next_attempt_time") and run.status == run_pb2.RUN_STATUS_PENDING:
        pairs.append(("Next attempt", absolute_time(as_datetime(run.next_attempt_time), now)))
    text = key_values(pairs)
    if not run.attempts:
        return text + "\n\nAttempts: none yet"
    indented = "\n".join("  " + line for line in attempts_table(run.attempts, now).split("\n"))
    return f"{text}\n\nAttempts:\n{indented}"


def attempts_table(attempts: Sequence[run_pb2.Attempt], now: datetime) -> str:
    """#, WORKER, STARTED, ENDED, STATUS, REASON, EXIT CODE, MESSAGE: one row per attempt."""
    rows = [
        [
            str(a.number),
            a.worker_id or "-",
            relative_time(as_datetime(a.start_time), now),
            relative_time(as_datetime(a.end_time), now),
            status_text(a.status),
            reason_text(a.reason) or "-",
            str(a.exit_code) if a.HasField("exit_code") else "-",
            _one_line(a.message) or "-",
        ]
        for a in attempts
    ]
    return table(ATTEMPT_HEADERS, rows)


def outcome_lines(run: run_pb2.Run) -> list[str]:
    """How a finished run ended, for the end of `submit --wait`: its status and reason,
    then for a failed run the last attempt's exit code and message."""
    head = f"run {run.uuid} {status_text(run.status)}"
    if run.status != run_pb2.RUN_STATUS_FAILED:
        return [head, f"  {_one_line(run.message)}"] if run.message else [head]
    reason = reason_text(run.reason)
    lines = [f"{head}: {reason}" if reason else head]
    if run.attempts:
        last = run.attempts[-1]
        parts = [f"attempt {last.number}"]
        if last.worker_id:
            parts[0] += f" on {last.worker_id}"
        if last.HasField("exit_code"):
            parts.append(f"exit code {last.exit_code}")
        if last.message:
            parts.append(_one_line(last.message))
        lines.append("  " + ": ".join(parts))
    elif run.message:
        lines.append(f"  {_one_line(run.message)}")
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())
