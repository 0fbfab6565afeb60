"""Every request the SDK sends, built from its arguments: pure, no I/O, nothing but
`batchyard.v1` and the standard library (an import contract keeps it so).

Both faces call these builders and then make the call with their own call helper, so a
request is built the same way whether it is awaited or not. Names people type ("failed",
"warning", "stderr", "member", "python") are turned into enum values here, and bad ones
raise ValueError before anything is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, Generic, TypeAlias, TypeVar

from batchyard.v1 import (
    access_pb2,
    definition_pb2,
    fleet_pb2,
    job_pb2,
    log_pb2,
    result_pb2,
    run_pb2,
)
from batchyard.v1 import access_service_pb2 as apb
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import fleet_service_pb2 as fpb
from batchyard.v1 import log_service_pb2 as lpb
from batchyard.v1 import run_service_pb2 as rpb

T = TypeVar("T")

# The largest page a listing asks for (runs, definitions, results, tokens, ...).
MAX_PAGE_SIZE = 1000
# The largest page of log entries.
MAX_LOG_PAGE_SIZE = 10_000
# The largest payload the server accepts.
MAX_PAYLOAD_BYTES = 1024 * 1024

# An ad-hoc SQL run: its query is stored as this file, its result set as this result.
SQL_SOURCE_LOCATION = "query.sql"
SQL_RESULT_NAME = "result.csv"

Payload: TypeAlias = "bytes | str | Mapping[str, Any] | Sequence[Any] | None"
"""A run's payload: bytes as they are, text as UTF-8, anything else as JSON."""
StatusFilter: TypeAlias = "str | Iterable[str] | None"
"""A status by name ("failed"; a `Status` is a str), or several."""
Level: TypeAlias = "log_pb2.LogLevel.ValueType | str"
Stream: TypeAlias = "log_pb2.LogStream.ValueType | str"
Position: TypeAlias = "log_pb2.LogPosition | tuple[int, int]"

# Statuses as the command line spells them, e.g. "pending" ↔ RUN_STATUS_PENDING.
STATUSES: dict[str, run_pb2.RunStatus.ValueType] = {
    "pending": run_pb2.RUN_STATUS_PENDING,
    "running": run_pb2.RUN_STATUS_RUNNING,
    "succeeded": run_pb2.RUN_STATUS_SUCCEEDED,
    "failed": run_pb2.RUN_STATUS_FAILED,
    "cancelled": run_pb2.RUN_STATUS_CANCELLED,
}
# Levels and streams by name ("warning", "stderr").
LEVELS: dict[str, log_pb2.LogLevel.ValueType] = {
    "debug": log_pb2.LOG_LEVEL_DEBUG,
    "info": log_pb2.LOG_LEVEL_INFO,
    "warning": log_pb2.LOG_LEVEL_WARNING,
    "error": log_pb2.LOG_LEVEL_ERROR,
}
STREAMS: dict[str, log_pb2.LogStream.ValueType] = {
    "stdout": log_pb2.LOG_STREAM_STDOUT,
    "stderr": log_pb2.LOG_STREAM_STDERR,
    "system": log_pb2.LOG_STREAM_SYSTEM,
}
JOB_TYPES: dict[str, job_pb2.JobType.ValueType] = {
    "python": job_pb2.JOB_TYPE_PYTHON,
    "sql": job_pb2.JOB_TYPE_SQL,
    "shell": job_pb2.JOB_TYPE_SHELL,
}
ROLES: dict[str, access_pb2.TokenRole.ValueType] = {
    "admin": access_pb2.TOKEN_ROLE_ADMIN,
    "member": access_pb2.TOKEN_ROLE_MEMBER,
    "viewer": access_pb2.TOKEN_ROLE_VIEWER,
    "worker": access_pb2.TOKEN_ROLE_WORKER,
}


# ---------------------------------------------------------------- listings


@dataclass(frozen=True)
class Listing(Generic[T]):
    """How to read one listing page by page: `request(page_size, page_token)` is the
    request of one page, `items(page)` its items; `what` names them ("runs")."""

    what: str
    request: Callable[[int, str], Any]
    items: Callable[[Any], Sequence[T]]
    max_page_size: int = MAX_PAGE_SIZE


def _listing(what: str, request_type: Callable[..., Any], **fields: Any) -> Listing[Any]:
    """The listing of `what` (also the field of a page holding the items) by requests
    of `request_type` with `fields`."""
    return Listing(
        what,
        lambda size, token: request_type(page_size=size, page_token=token, **fields),
        attrgetter(what),
    )


def list_tokens(show_inactive: bool) -> Listing[access_pb2.Token]:
    """The tokens, newest first; revoked and expired ones too with `show_inactive`."""
    return _listing("tokens", apb.ListTokensRequest, show_inactive=show_inactive)


def list_workspaces() -> Listing[access_pb2.Workspace]:
    """The workspaces the token may see, by name."""
    return _listing("workspaces", apb.ListWorkspacesRequest)


def list_audit_events(action: str) -> Listing[access_pb2.AuditEvent]:
    """Audit events, newest first, of one `action` ("": all)."""
    return _listing("events", apb.ListAuditEventsRequest, action=action)


def list_definitions(prefix: str, job_type: str | None) -> Listing[definition_pb2.Definition]:
    """Definitions by name, those starting with `prefix`, of one job type ("python",
    "sql", "shell"; None: any). ValueError for an unknown type."""
    value = job_type_value(job_type)
    return _listing("definitions", dpb.ListDefinitionsRequest, name_prefix=prefix, type=value)


def list_runs(
    *,
    definition: str = "",
    statuses: Iterable[run_pb2.RunStatus.ValueType] = (),
    submitted_from: datetime | None = None,
    submitted_to: datetime | None = None,
) -> Listing[run_pb2.Run]:
    """Runs newest first: of `definition` (name or uuid), in one of `statuses`, submitted
    in [`submitted_from`, `submitted_to`) (naive datetimes are UTC)."""
    template = rpb.ListRunsRequest(definition=definition, statuses=statuses)
    if submitted_from is not None:
        template.submit_time_from.FromDatetime(submitted_from)
    if submitted_to is not None:
        template.submit_time_to.FromDatetime(submitted_to)

    def request(size: int, token: str) -> rpb.ListRunsRequest:
        page = rpb.ListRunsRequest(page_size=size, page_token=token)
        page.MergeFrom(template)
        return page

    return Listing("runs", request, lambda page: page.runs)


def list_results(run_id: str) -> Listing[result_pb2.RunResult]:
    """A run's results, by name."""
    return _listing("results", rpb.ListRunResultsRequest, run=run_id)


# ---------------------------------------------------------------- names and values


def payload_bytes(payload: Payload) -> bytes:
    """The bytes of a payload: bytes as given, str as UTF-8, other values as JSON."""
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload).encode()


def status_values(status: StatusFilter) -> list[run_pb2.RunStatus.ValueType]:
    """["pending", Status.RUNNING] → the RunStatus values; ValueError for an unknown one."""
    if status is None:
        return []
    names = [status] if isinstance(status, str) else list(status)
    unknown = [str(n) for n in names if str(n).lower() not in STATUSES]
    if unknown:
        raise ValueError(f"unknown status {unknown[0]!r}; choose from {', '.join(STATUSES)}")
    return [STATUSES[str(n).lower()] for n in names]


def job_type_value(job_type: str | None) -> job_pb2.JobType.ValueType:
    """ "python", "sql" or "shell" (None: any) → the JobType value."""
    if job_type is None:
        return job_pb2.JOB_TYPE_UNSPECIFIED
    if job_type.lower() not in JOB_TYPES:
        raise ValueError(f"unknown job type {job_type!r}; choose from {', '.join(JOB_TYPES)}")
    return JOB_TYPES[job_type.lower()]


def _enum_value(value: int | str, names: Mapping[str, int], what: str) -> int:
    """`value` given as one of `names` ("warning", "WARNING", "LOG_LEVEL_WARNING") or as
    one of their values; ValueError naming `what` if it is neither."""
    if isinstance(value, str):
        name = value.strip().lower().removeprefix(f"{what.replace(' ', '_')}_")
        name = {"warn": "warning"}.get(name, name)
        if name not in names:
            raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(names)}")
        return names[name]
    if value not in names.values():
        raise ValueError(f"unknown {what} {value!r}")
    return value


def log_level(level: Level | None) -> log_pb2.LogLevel.ValueType:
    """A level given as a LogLevel value or a name: "warning", "WARNING", "warn",
    "LOG_LEVEL_WARNING". None (or LOG_LEVEL_UNSPECIFIED) keeps every level. ValueError
    if unknown."""
    if level is None or level == log_pb2.LOG_LEVEL_UNSPECIFIED:
        return log_pb2.LOG_LEVEL_UNSPECIFIED
    return log_pb2.LogLevel.ValueType(_enum_value(level, LEVELS, "log level"))


def log_stream(stream: Stream) -> log_pb2.LogStream.ValueType:
    """A stream given as a LogStream value or a name: "stderr", "STDERR",
    "LOG_STREAM_STDERR". ValueError if unknown."""
    return log_pb2.LogStream.ValueType(_enum_value(stream, STREAMS, "log stream"))


def log_position(after: Position | None) -> log_pb2.LogPosition:
    """A position given as a LogPosition or an (attempt, seq) pair; None is the start."""
    if after is None:
        return log_pb2.LogPosition()
    if isinstance(after, log_pb2.LogPosition):
        return after
    attempt, seq = after
    return log_pb2.LogPosition(attempt=attempt, seq=seq)


# ---------------------------------------------------------------- runs


def submit_request(
    definition: str | None = None,
    *,
    config: job_pb2.JobConfig | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    queue: str | None = None,
    priority: int | None = None,
    payload: Payload = None,
    request_id: str = "",
) -> rpb.SubmitRunRequest:
    """The SubmitRunRequest of a run of `definition` (name or uuid) or of an inline
    `config`, exactly one of the two (ValueError otherwise); see `Runs.submit`.

    `retries` replaces the whole retry strategy by one with that many retries and
    defaults for everything else; `payload` is sent as `payload_bytes` makes it.
    """
    if (definition is None) == (config is None):
        raise ValueError("give either a definition (name or uuid) or an inline config")
    overrides = run_pb2.RunOverrides(
        args=list(args or []),
        env=dict(env or {}),
        secret_env=dict(secret_env or {}),
        queue=queue or "",
    )
    if timeout is not None:
        overrides.timeout.FromNanoseconds(round(timeout * 1e9))
    if retries is not None:
        overrides.retry_strategy.CopyFrom(job_pb2.RetryStrategy(num_retries=retries))
    if priority is not None:
        overrides.priority = priority
    request = rpb.SubmitRunRequest(
        overrides=overrides, payload=payload_bytes(payload), request_id=request_id
    )
    if config is not None:
        request.config.CopyFrom(config)
    else:
        request.definition = definition or ""
    return request


def sql_config(query: str, target: str) -> job_pb2.JobConfig:
    """The inline configuration of an ad-hoc SQL run of `query` against the database the
    workers know as `target`; its last result set becomes the result "result.csv"."""
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_SQL,
        source=job_pb2.Source(inline=job_pb2.InlineSource(text=query)),
        source_location=SQL_SOURCE_LOCATION,
        sql_target=job_pb2.SqlTarget(connection=target),
    )


# ---------------------------------------------------------------- definitions


def update_definition_request(
    ref: str,
    changes: definition_pb2.Definition,
    set_fields: Sequence[str],
    paths: Sequence[str] | None = None,
    expected_version: int = 0,
) -> dpb.UpdateDefinitionRequest:
    """Replace the fields named by `paths` (None: `set_fields`, the top-level fields the
    changes set) of definition `ref`; ValueError when that names nothing."""
    mask = list(paths) if paths is not None else list(set_fields)
    if not mask:
        raise ValueError("the changes set none of name, description, config: name paths")
    request = dpb.UpdateDefinitionRequest(
        definition=ref, changes=changes, expected_version=expected_version
    )
    request.update_mask.paths.extend(mask)
    return request


# ---------------------------------------------------------------- access


def create_token_request(name: str, role: str, ttl: float | None) -> apb.CreateTokenRequest:
    """A token `name` with `role` (admin, member, viewer, worker) living `ttl` seconds
    (None: no expiry); ValueError for an unknown role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    request = apb.CreateTokenRequest(name=name, role=ROLES[role])
    if ttl is not None:
        request.ttl.FromNanoseconds(round(ttl * 1e9))
    return request


# ---------------------------------------------------------------- logs


def get_logs_request(
    run_id: str,
    *,
    after: Position | None = None,
    attempt: int = 0,
    min_level: Level | None = None,
    streams: Iterable[Stream] = (),
    page_size: int = 0,
    page_token: str = "",
) -> lpb.GetLogsRequest:
    """One page of stored entries of the run after `after`, with the filters."""
    return lpb.GetLogsRequest(
        run=run_id,
        attempt=attempt,
        after=log_position(after),
        page_size=page_size,
        page_token=page_token,
        min_level=log_level(min_level),
        streams=[log_stream(s) for s in streams],
    )


def tail_logs_request(
    run_id: str,
    *,
    after: Position | None = None,
    only_new: bool = False,
    attempt: int = 0,
    min_level: Level | None = None,
    streams: Iterable[Stream] = (),
) -> lpb.TailLogsRequest:
    """Follow the run's log after `after` (or, `only_new`, from now on), with the filters."""
    return lpb.TailLogsRequest(
        run=run_id,
        attempt=attempt,
        after=log_position(after),
        only_new=only_new,
        min_level=log_level(min_level),
        streams=[log_stream(s) for s in streams],
    )


# ---------------------------------------------------------------- workers


def list_workers() -> Listing[fleet_pb2.Worker]:
    """The live workers of the workspace, by id."""
    return _listing("workers", fpb.ListWorkersRequest)


def get_worker_request(worker_id: str) -> fpb.GetWorkerRequest:
    """One worker by its id; ValueError for an empty id."""
    if not worker_id.strip():
        raise ValueError("a worker id is required")
    return fpb.GetWorkerRequest(worker_id=worker_id.strip())
