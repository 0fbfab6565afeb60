"""How SDK objects show in Jupyter: HTML tables of runs, definitions, log entries,
results, tokens, workspaces and audit events.

`ItemList` is a list (what `.to_list()` of a listing returns, and `Run.logs()`) that a
notebook shows as a table, one row per item, the columns chosen by the kind of item.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from batchyard.client.describe import (
    absolute_time,
    as_datetime,
    attempt_usage,
    definition_ref,
    duration,
    level_text,
    reason_text,
    relative_time,
    size_text,
    state_text,
    status_text,
    stream_text,
)
from batchyard.v1 import access_pb2, definition_pb2, job_pb2, log_pb2, result_pb2, run_pb2

T = TypeVar("T")
Row = Callable[[Any], list[str]]

# Rows shown of a listing that has not been read to its end (Paged in a notebook).
DISPLAY_LIMIT = 20


def html_table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "", note: str = ""
) -> str:
    """A plain HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    top = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    tail = f"<p>{html.escape(note)}</p>" if note else ""
    return f"<table>{top}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"


def key_value_table(pairs: Sequence[tuple[str, str]], caption: str = "") -> str:
    """A two-column HTML table: one field per row."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in pairs
    )
    top = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{top}<tbody>{rows}</tbody></table>"


def _type(job_type: job_pb2.JobType.ValueType) -> str:
    name = job_pb2.JobType.Name(job_type) if job_type in job_pb2.JobType.values() else ""
    return name.removeprefix("JOB_TYPE_").lower() or "-"


def _run_row(run: run_pb2.Run) -> list[str]:
    return [
        run.uuid,
        definition_ref(run),
        status_text(run.status),
        reason_text(run.reason) or "-",
        f"{run.progress}%",
        str(len(run.attempts)),
        relative_time(as_datetime(run.submit_time)),
        relative_time(as_datetime(run.end_time)),
    ]


def _definition_row(d: definition_pb2.Definition) -> list[str]:
    return [
        d.name,
        str(d.version),
        _type(d.config.type),
        d.config.queue or "-",
        relative_time(as_datetime(d.update_time)),
        d.uuid,
    ]


def _entry_row(e: log_pb2.LogEntry) -> list[str]:
    when = as_datetime(e.time)
    return [
        "-" if when is None else f"{when:%H:%M:%S}.{when.microsecond // 1000:03}",
        str(e.attempt),
        stream_text(e.stream),
        level_text(e.level),
        e.message,
    ]


def _result_row(r: result_pb2.RunResult) -> list[str]:
    return [r.name, size_text(r.size_bytes), r.media_type or "-", r.sha256[:12], str(r.attempt)]


def _token_row(t: access_pb2.Token) -> list[str]:
    role = access_pb2.TokenRole.Name(t.role).removeprefix("TOKEN_ROLE_").lower()
    state = "revoked" if t.HasField("revoke_time") else "active"
    return [t.prefix, t.name, role, relative_time(as_datetime(t.create_time)), state]


def _workspace_row(w: access_pb2.Workspace) -> list[str]:
    return [w.name, relative_time(as_datetime(w.create_time))]


def _audit_row(e: access_pb2.AuditEvent) -> list[str]:
    return [
        relative_time(as_datetime(e.time)),
        e.actor,
        e.action,
        f"{e.object_kind} {e.object_id}",
        e.detail,
    ]


COLUMNS: dict[type[Message], tuple[tuple[str, ...], Row]] = {
    run_pb2.Run: (
        ("uuid", "definition", "status", "reason", "progress", "attempts", "submitted", "ended"),
        _run_row,
    ),
    definition_pb2.Definition: (
        ("name", "version", "type", "queue", "updated", "uuid"),
        _definition_row,
    ),
    log_pb2.LogEntry: (("time (UTC)", "attempt", "stream", "level", "message"), _entry_row),
    result_pb2.RunResult: (("name", "size", "media type", "sha256", "attempt"), _result_row),
    access_pb2.Token: (("prefix", "name", "role", "created", "state"), _token_row),
    access_pb2.Workspace: (("name", "created"), _workspace_row),
    access_pb2.AuditEvent: (("when", "who", "action", "object", "detail"), _audit_row),
}


def message_of(item: Any) -> Any:
    """The protobuf message behind an item: a Run handle's `state`, else the item."""
    state = getattr(item, "state", None)
    return state if isinstance(state, Message) else item


def items_html(items: Sequence[Any], caption: str = "", note: str = "") -> str:
    """The items as one HTML table, columns by the kind of the first item."""
    if not items:
        return f"<p>{html.escape(caption or 'nothing')}: none</p>"
    messages = [message_of(item) for item in items]
    found = COLUMNS.get(type(messages[0]))
    if found is None:
        return html_table(["item"], [[repr(m)] for m in messages], caption, note)
    headers, row = found
    return html_table(headers, [row(m) for m in messages], caption, note)


def run_html(run: run_pb2.Run) -> str:
    """One run: its fields, then its attempts."""
    timeout = run.config.timeout.ToTimedelta().total_seconds()
    pairs = [
        ("uuid", run.uuid),
        ("definition", definition_ref(run)),
        ("state", state_text(run)),
        ("message", run.message or "-"),
        ("progress", f"{run.progress}%"),
        ("timeout", duration(timeout) if run.config.HasField("timeout") else "-"),
        ("submitted", absolute_time(as_datetime(run.submit_time))),
        ("started", absolute_time(as_datetime(run.start_time))),
        ("ended", absolute_time(as_datetime(run.end_time))),
    ]
    table = key_value_table(pairs, caption=f"run {run.uuid}")
    if not run.attempts:
        return table
    rows = [
        [
            str(a.number),
            a.worker_id or "-",
            status_text(a.status),
            reason_text(a.reason) or "-",
            str(a.exit_code) if a.HasField("exit_code") else "-",
            *attempt_usage(a),
            relative_time(as_datetime(a.start_time)),
            relative_time(as_datetime(a.end_time)),
            a.message or "-",
        ]
        for a in run.attempts
    ]
    headers = (
        "attempt", "worker", "status", "reason", "exit code", "peak memory", "CPU time",
        "started", "ended", "message",
    )  # fmt: skip
    return table + html_table(headers, rows)


class ItemList(list[T]):
    """A list of runs, definitions, log entries, ... that shows as a table in Jupyter."""

    def _repr_html_(self) -> str:
        return items_html(self)
