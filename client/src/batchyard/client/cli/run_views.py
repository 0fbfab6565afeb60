"""Runs on the terminal: the list table, the view of one run, and one-line states."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime

from batchyard.client.cli.definition_views import infra_retries_text, retries_text, type_name
from batchyard.client.cli.pipeline_views import graph_pairs
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
from batchyard.client.describe import STATUSES as STATUSES
from batchyard.client.describe import attempt_usage, one_line, tasks_text
from batchyard.client.describe import definition_ref as definition_ref
from batchyard.client.describe import elapsed as elapsed
from batchyard.client.describe import outcome_lines as outcome_lines
from batchyard.client.describe import reason_text as reason_text
from batchyard.client.describe import state_text as state_text
from batchyard.client.describe import status_text as status_text
from batchyard.v1 import run_pb2

TABLE_HEADERS = ("UUID", "DEFINITION", "STATUS", "REASON", "ATTEMPTS", "SUBMITTED", "ENDED")
ATTEMPT_HEADERS = (
    "#",
    "WORKER",
    "STARTED",
    "ENDED",
    "STATUS",
    "REASON",
    "EXIT CODE",
    "RETRY",
    "MEMORY",
    "CPU",
    "MESSAGE",
)
# Which budget the retry after an attempt was charged to.
RETRY_BUDGETS = {run_pb2.RETRY_BUDGET_JOB: "job", run_pb2.RETRY_BUDGET_INFRA: "infra"}


# ANSI colours of statuses, on a terminal.
STATUS_COLOURS = {
    "succeeded": "\x1b[32m",  # green
    "failed": "\x1b[1;31m",  # bold red
    "cancelled": "\x1b[33m",  # yellow
    "running": "\x1b[36m",  # cyan
}


def paint_status(text: str, colour: bool) -> str:
    """`text` (which starts with a status word, maybe after "run <uuid> ") coloured by
    that status when `colour`."""
    if not colour:
        return text
    for status, code in STATUS_COLOURS.items():
        if text.startswith(status) or f" {status}" in text.split(":")[0]:
            return f"{code}{text}\x1b[0m"
    return text


def runs_table(runs: Sequence[run_pb2.Run], now: datetime, *, colour: bool = False) -> str:
    """UUID, DEFINITION, STATUS, REASON, ATTEMPTS, SUBMITTED, ENDED: one row per run;
    with `colour`, the status coloured."""
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
    status_column = TABLE_HEADERS.index("STATUS")

    def paint(column: int, cell: str) -> str:
        return paint_status(cell, colour) if column == status_column else cell

    return table(TABLE_HEADERS, rows, paint)


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
        ("Infra retries", infra_retries_text(config.retry_strategy)),
    ]
    if run.num_retries_used:
        pairs.append(("Retries used", str(run.num_retries_used)))
    if run.num_infra_retries_used:
        pairs.append(("Infra retries used", str(run.num_infra_retries_used)))
    pairs.append(("Progress", f"{run.progress}%"))
    if run.HasField("tasks"):
        pairs.append(("Tasks", tasks_text(run.tasks)))
        for error in run.tasks.errors:
            line = f" line {error.line}" if error.line else ""
            pairs.append(
                ("  error", one_line(f"{error.phase} {error.task}{line}: {error.message}"))
            )
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
    pairs += graph_pairs(run)
    text = key_values(pairs)
    if not run.attempts:
        return text + "\n\nAttempts: none yet"
    indented = "\n".join("  " + line for line in attempts_table(run.attempts, now).split("\n"))
    return f"{text}\n\nAttempts:\n{indented}"


def attempts_table(attempts: Sequence[run_pb2.Attempt], now: datetime) -> str:
    """#, WORKER, STARTED, ENDED, STATUS, REASON, EXIT CODE, RETRY (the budget the retry
    after it was charged to: job or infra), MEMORY (peak), CPU (time), MESSAGE: one row
    per attempt."""
    rows = [
        [
            str(a.number),
            a.worker_id or "-",
            relative_time(as_datetime(a.start_time), now),
            relative_time(as_datetime(a.end_time), now),
            *attempt_state(a),
            str(a.exit_code) if a.HasField("exit_code") else "-",
            RETRY_BUDGETS.get(a.retry_budget, "-"),
            *attempt_usage(a),
            one_line(a.message) or "-",
        ]
        for a in attempts
    ]
    return table(ATTEMPT_HEADERS, rows)


def attempt_state(attempt: run_pb2.Attempt) -> tuple[str, str]:
    """STATUS and REASON of an attempt. One that ended while its run went back to the
    queue was handed back by its worker (ReleaseRun): it says "released", not "pending"."""
    if attempt.status == run_pb2.RUN_STATUS_PENDING and as_datetime(attempt.end_time):
        return "released", "-"
    return status_text(attempt.status), reason_text(attempt.reason) or "-"
