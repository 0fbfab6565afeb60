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
    ingest_pb2,
    job_pb2,
    log_pb2,
    pipeline_pb2,
    queue_pb2,
    result_pb2,
    run_pb2,
    schedule_pb2,
)
from batchyard.v1 import access_service_pb2 as apb
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import fleet_service_pb2 as fpb
from batchyard.v1 import log_service_pb2 as lpb
from batchyard.v1 import queue_service_pb2 as qpb
from batchyard.v1 import retention_service_pb2 as retpb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import schedule_service_pb2 as spb

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
    "ingest": job_pb2.JOB_TYPE_INGEST,
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
    parent: str = "",
    include_children: bool = False,
) -> Listing[run_pb2.Run]:
    """Runs newest first: of `definition` (name or uuid), in one of `statuses`, submitted
    in [`submitted_from`, `submitted_to`) (naive datetimes are UTC); the children of
    the array run `parent` only, or also children of arrays (`include_children`)."""
    template = rpb.ListRunsRequest(
        definition=definition,
        statuses=statuses,
        parent=parent,
        include_children=include_children,
    )
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


@dataclass(frozen=True)
class Step:
    """An entry of a pipeline being built (`Pipeline.add`): later entries depend on it."""

    index: int


DependsOn: TypeAlias = "str | Step | Any | tuple[Any, ...]"
"""A run (its uuid, a Run handle or a `batchyard.v1.Run`), a `Step` of the same
pipeline, or a tuple of one of those and words: "any" (after any end, not only a
success), "n_to_n" (arrays: child i after child i); or the word "sequential" alone
(arrays: child i after child i-1)."""

_CONDITIONS = {"success": pipeline_pb2.DEPENDENCY_CONDITION_AFTER_SUCCESS,
               "any": pipeline_pb2.DEPENDENCY_CONDITION_AFTER_ANY}  # fmt: skip
_TYPES = {"n_to_n": pipeline_pb2.DEPENDENCY_TYPE_N_TO_N,
          "sequential": pipeline_pb2.DEPENDENCY_TYPE_SEQUENTIAL}  # fmt: skip


def dependency(depends_on: DependsOn) -> pipeline_pb2.RunDependency:
    """The RunDependency of one `depends_on` entry (ValueError for an unknown word)."""
    target, *words = depends_on if isinstance(depends_on, tuple) else (depends_on,)
    out = pipeline_pb2.RunDependency()
    if target == "sequential":
        target, words = None, ["sequential", *words]
    for word in words:
        if word in _CONDITIONS:
            out.condition = _CONDITIONS[word]
        elif word in _TYPES:
            out.type = _TYPES[word]
        else:
            raise ValueError(f"unknown dependency word {word!r}: any, success, n_to_n, sequential")
    if isinstance(target, Step):
        out.batch_index = target.index
    elif target is not None:
        out.run = target if isinstance(target, str) else _run_id(target)
    return out


def _run_id(run: Any) -> str:
    for name in ("id", "uuid"):
        value = getattr(run, name, None)
        if isinstance(value, str) and value:
            return value
    raise ValueError(f"not a run: {run!r} (give its uuid, a Run, or a Step)")


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
    array_size: int = 0,
    payloads: Sequence[Payload] | None = None,
    depends_on: Sequence[DependsOn] = (),
    batch_key: str = "",
) -> rpb.SubmitRunRequest:
    """The SubmitRunRequest of a run of `definition` (name or uuid) or of an inline
    `config`, exactly one of the two (ValueError otherwise); see `Runs.submit`.

    `retries` replaces the whole retry strategy by one with that many retries and
    defaults for everything else; `payload` (and each of `payloads`, one per child of
    an array of `array_size`) is sent as `payload_bytes` makes it; `depends_on` as
    `dependency` reads each entry.
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
        overrides=overrides,
        payload=payload_bytes(payload),
        request_id=request_id,
        array_size=array_size,
        payloads=[payload_bytes(p) for p in payloads or ()],
        depends_on=[dependency(d) for d in depends_on],
        batch_key=batch_key,
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


# ---------------------------------------------------------------- queues

QUEUE_FIELDS = ("description", "priority", "paused", "concurrency_limit")


def list_queues() -> Listing[queue_pb2.Queue]:
    """The queues of the workspace, by name, each with its numbers."""
    return _listing("queues", qpb.ListQueuesRequest)


def queue_message(name: str = "", **fields: Any) -> queue_pb2.Queue:
    """A Queue with `fields` of QUEUE_FIELDS (`paused`: bool; `concurrency_limit`: None
    or 0 for none); ValueError for another field."""
    unknown = sorted(set(fields) - set(QUEUE_FIELDS))
    if unknown:
        raise ValueError(f"unknown queue fields: {', '.join(unknown)}")
    queue = queue_pb2.Queue(name=name)
    if "description" in fields:
        queue.description = fields["description"]
    if "priority" in fields:
        queue.priority = fields["priority"]
    if "paused" in fields:
        paused = fields["paused"]
        queue.state = queue_pb2.QUEUE_STATE_PAUSED if paused else queue_pb2.QUEUE_STATE_ENABLED
    if "concurrency_limit" in fields:
        queue.concurrency_limit = fields["concurrency_limit"] or 0
    return queue


def update_queue_request(name: str, **changes: Any) -> qpb.UpdateQueueRequest:
    """Change the given fields (of QUEUE_FIELDS) of queue `name`; ValueError when
    `changes` names none."""
    if not changes:
        raise ValueError(f"name a field to change: {', '.join(QUEUE_FIELDS)}")
    paths = ["state" if f == "paused" else f for f in changes]
    request = qpb.UpdateQueueRequest(queue=name, changes=queue_message(**changes))
    request.update_mask.paths.extend(paths)
    return request


# ---------------------------------------------------------------- schedules and retention

# Overlap policies as the command line spells them.
OVERLAPS: dict[str, schedule_pb2.OverlapPolicy.ValueType] = {
    "skip": schedule_pb2.OVERLAP_POLICY_SKIP,
    "buffer-one": schedule_pb2.OVERLAP_POLICY_BUFFER_ONE,
    "allow": schedule_pb2.OVERLAP_POLICY_ALLOW,
    "cancel-other": schedule_pb2.OVERLAP_POLICY_CANCEL_OTHER,
}


def _seconds_field(message: Any, name: str, seconds: float) -> None:
    getattr(message, name).FromNanoseconds(round(seconds * 1e9))


def _time_field(message: Any, name: str, when: datetime) -> None:
    if when.tzinfo is None:
        raise ValueError(f"{name}: give a time with a time zone")
    getattr(message, name).FromDatetime(when)


def schedule_spec(
    definition: str | None = None,
    *,
    cron: str | None = None,
    interval: float | None = None,
    time_zone: str | None = None,
    overlap: str | None = None,
    max_concurrent_runs: int | None = None,
    catchup_window: float | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    note: str | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    payload: Payload = None,
) -> tuple[schedule_pb2.Schedule, list[str]]:
    """A Schedule with the fields given (not None), and their names (an update's mask).
    `interval` and `catchup_window` are seconds; `overlap` is skip, buffer-one, allow or
    cancel-other."""
    s, given = schedule_pb2.Schedule(), list[str]()
    if definition is not None:
        s.definition, given = definition, [*given, "definition"]
    if cron is not None and interval is not None:
        raise ValueError("give a cron expression or an interval, not both")
    if cron is not None:
        s.cron, given = cron, [*given, "cron"]
    if interval is not None:
        _seconds_field(s, "interval", interval)
        given.append("interval")
    for name, value in (("time_zone", time_zone), ("note", note)):
        if value is not None:
            setattr(s, name, value)
            given.append(name)
    if overlap is not None:
        s.overlap_policy = OVERLAPS[_key(overlap, OVERLAPS, "overlap policy")]
        given.append("overlap_policy")
    if max_concurrent_runs is not None:
        s.max_concurrent_runs, given = max_concurrent_runs, [*given, "max_concurrent_runs"]
    if catchup_window is not None:
        _seconds_field(s, "catchup_window", catchup_window)
        given.append("catchup_window")
    for name, when in (("start_time", start_time), ("end_time", end_time)):
        if when is not None:
            _time_field(s, name, when)
            given.append(name)
    if args is not None or env is not None:
        s.overrides.CopyFrom(run_pb2.RunOverrides(args=list(args or []), env=dict(env or {})))
        given.append("overrides")
    if payload is not None:
        s.payload, given = payload_bytes(payload), [*given, "payload"]
    return s, given


def _key(value: str, names: Mapping[str, Any], what: str) -> str:
    key = value.lower().replace("_", "-")
    if key not in names:
        raise ValueError(f"unknown {what} {value!r}: one of {', '.join(names)}")
    return key


def list_schedules(definition: str) -> Listing[schedule_pb2.Schedule]:
    return _listing("schedules", spb.ListSchedulesRequest, definition=definition)


def retention_policy(
    keep_for: float | None = None,
    keep_succeeded: int | None = None,
    keep_failed: int | None = None,
    audit_keep_for: float | None = None,
) -> retpb.RetentionPolicy:
    """A retention policy; periods in seconds, None: the rule is not set."""
    p = retpb.RetentionPolicy()
    if keep_for is not None:
        _seconds_field(p, "keep_for", keep_for)
    if keep_succeeded is not None:
        p.keep_succeeded = keep_succeeded
    if keep_failed is not None:
        p.keep_failed = keep_failed
    if audit_keep_for is not None:
        _seconds_field(p, "audit_keep_for", audit_keep_for)
    return p


def delete_runs_request(
    status: StatusFilter = None,
    definition: str = "",
    schedule: str = "",
    older_than: float | None = None,
    dry_run: bool = False,
) -> retpb.DeleteRunsRequest:
    """A DeleteRunsRequest; `older_than` in seconds since the runs ended."""
    request = retpb.DeleteRunsRequest(
        statuses=status_values(status), definition=definition, schedule=schedule, dry_run=dry_run
    )
    if older_than is not None:
        _seconds_field(request, "older_than", older_than)
    return request


# ---------------------------------------------------------------- ingest

INGEST_FORMATS = ("csv", "ndjson")


def ingest_config(
    uri: str,
    *,
    target: str,
    table: str,
    format: str = "csv",
    regex: str = "",
    max_files: int = 0,
    dry_run: bool = False,
    input_concurrency: int = 0,
    region: str = "",
    endpoint_url: str = "",
    columns: Sequence[ingest_pb2.IngestColumn] = (),
    csv: ingest_pb2.CsvFormat | None = None,
    max_bad_rows: int | None = None,
) -> job_pb2.JobConfig:
    """The inline configuration of an ad-hoc INGEST run: the S3 object or prefix `uri`
    (its keys filtered by `regex`, at most `max_files`) loaded into `table` of the database
    the workers know as `target`, each file exactly once. `format` is "csv" or "ndjson";
    `max_bad_rows` skips up to that many bad rows (default: fail at the first)."""
    if format not in INGEST_FORMATS:
        raise ValueError(f"format {format!r}: expected one of {', '.join(INGEST_FORMATS)}")
    ingest = ingest_pb2.IngestConfig(
        input=ingest_pb2.IngestInput(
            uri=uri,
            region=region,
            endpoint_url=endpoint_url,
            regex_filter=regex,
            max_files=max_files,
        ),
        table=table,
        columns=list(columns),
        input_concurrency=input_concurrency,
        dry_run=dry_run,
    )
    if format == "csv":
        ingest.format.csv.CopyFrom(csv or ingest_pb2.CsvFormat())
    else:
        ingest.format.ndjson.SetInParent()
    if max_bad_rows is not None:
        ingest.error_policy.skip_rows.max_bad_rows = max_bad_rows
    return job_pb2.JobConfig(
        type=job_pb2.JOB_TYPE_INGEST,
        sql_target=job_pb2.SqlTarget(connection=target),
        ingest=ingest,
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
