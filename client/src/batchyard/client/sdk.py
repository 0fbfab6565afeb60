"""`Client`: the synchronous Python SDK — definitions, runs, logs, results, access.

    from batchyard.client import Client

    with Client() as client:                       # $BATCHYARD_SERVER, $BATCHYARD_TOKEN
        client.definitions.create("greet.yaml")
        run = client.runs.submit("greet", args=["batchyard"], payload={"day": "monday"})
        run.wait()                                 # prints progress; raises RunFailedError
        run.results().download_files("out")

Every call has a deadline (`timeout` seconds); calls that are safe to repeat (reads,
and a submit with a `request_id`) are retried on UNAVAILABLE (see `RetryPolicy`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeAlias

import grpc

from batchyard.client import connection
from batchyard.client.access import AuditClient, TokensClient, WorkspacesClient
from batchyard.client.definitions import DefinitionsClient
from batchyard.client.describe import STATUSES, Status
from batchyard.client.logs import LogsClient
from batchyard.client.paging import Paged
from batchyard.client.retry import NO_RETRY, RetryInterceptor, RetryPolicy
from batchyard.client.run import Run
from batchyard.client.runs import JobConfig, RunsClient, sql_config
from batchyard.client.specs import DefinitionSpec, load_definition
from batchyard.v1 import access_pb2, access_service_pb2, definition_pb2, job_pb2, run_pb2

Payload: TypeAlias = "bytes | str | Mapping[str, Any] | Sequence[Any] | None"
"""A run's payload: bytes as they are, text as UTF-8, anything else as JSON."""
StatusFilter: TypeAlias = "str | Status | Iterable[str | Status] | None"

JOB_TYPES: dict[str, job_pb2.JobType.ValueType] = {
    "python": job_pb2.JOB_TYPE_PYTHON,
    "sql": job_pb2.JOB_TYPE_SQL,
    "shell": job_pb2.JOB_TYPE_SHELL,
}


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


class Definitions:
    """`client.definitions`: create, get, list, update and delete job definitions.

    A definition is named by its name or uuid; one is given as a `batchyard.v1.Definition`
    message, a mapping of its fields (the protobuf JSON mapping, as in a definition
    file), or the path of a JSON or YAML definition file.
    """

    def __init__(self, client: DefinitionsClient) -> None:
        self._client = client

    def create(self, definition: DefinitionSpec) -> definition_pb2.Definition:
        """Create it (version 1) and return it as stored (DefinitionExistsError if the
        name is taken; InvalidArgumentError naming the bad fields)."""
        message, _ = load_definition(definition)
        return self._client.create(message)

    def get(self, ref: str, version: int = 0) -> definition_pb2.Definition:
        """The definition `ref` (name or uuid), at `version` or the current one."""
        return self._client.get(ref, version)

    def list(
        self,
        *,
        prefix: str = "",
        type: str | None = None,
        limit: int | None = None,
        page_size: int = 0,
    ) -> Paged[definition_pb2.Definition]:
        """Definitions by name: those whose name starts with `prefix`, of one job `type`
        ("python", "sql", "shell"); at most `limit` (None: all). Read page by page."""
        job_type = job_type_value(type)

        def read(most: int | None) -> Iterator[definition_pb2.Definition]:
            return self._client.iter(
                limit=most, page_size=page_size, name_prefix=prefix, job_type=job_type
            )

        return Paged(read, "definitions", limit)

    def update(
        self,
        ref: str,
        changes: DefinitionSpec,
        paths: Sequence[str] | None = None,
        *,
        expected_version: int = 0,
    ) -> definition_pb2.Definition:
        """Replace the fields named by `paths` ("config.args", "description") with those
        of `changes`; without `paths`, the top-level fields among name, description and
        config that `changes` sets. Bumps the version; with `expected_version` only
        while the definition is still at it (VersionConflictError otherwise)."""
        message, fields = load_definition(changes)
        mask = list(paths) if paths is not None else fields
        if not mask:
            raise ValueError("the changes set none of name, description, config: name paths")
        return self._client.update(ref, message, mask, expected_version=expected_version)

    def delete(self, ref: str) -> None:
        """Delete it; its name becomes free. Runs keep the version they pinned."""
        self._client.delete(ref)


class Runs:
    """`client.runs`: submit runs, list them, get one by id."""

    def __init__(self, runs: RunsClient, logs: LogsClient) -> None:
        self._runs = runs
        self._logs = logs

    def _handle(self, state: run_pb2.Run, *, deduplicated: bool = False) -> Run:
        return Run(self._runs, self._logs, state, deduplicated=deduplicated)

    def submit(
        self,
        definition: str | None = None,
        *,
        config: JobConfig | None = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        secret_env: Mapping[str, str] | None = None,
        payload: Payload = None,
        request_id: str = "",
        timeout: float | None = None,
        retries: int | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> Run:
        """Submit a run of `definition` (name or uuid; the run pins its current version)
        or of an inline `config`, and return its handle.

        `args` replace the definition's; `env` and `secret_env` are merged over its own;
        `timeout` (seconds per attempt), `retries`, `queue` and `priority` replace its
        own. `payload` (≤ 1 MiB: bytes, text, or a value sent as JSON) is the file at
        $BATCHYARD_PAYLOAD_PATH in the job. With a `request_id` submitting is idempotent
        — the same id returns the run created first (`run.deduplicated`) — and is retried
        when the server cannot be reached.
        """
        response = self._runs.submit(
            definition,
            config=config,
            args=args,
            env=env,
            secret_env=secret_env,
            timeout=timeout,
            retries=retries,
            queue=queue,
            priority=priority,
            payload=payload_bytes(payload),
            request_id=request_id,
        )
        return self._handle(response.run, deduplicated=response.deduplicated)

    def get(self, run_id: str) -> Run:
        """The run with that uuid, read now (RunNotFoundError if there is none)."""
        return self._handle(self._runs.get(run_id))

    def list(
        self,
        *,
        definition: str = "",
        status: StatusFilter = None,
        submitted_after: datetime | None = None,
        submitted_before: datetime | None = None,
        limit: int | None = None,
        page_size: int = 0,
    ) -> Paged[Run]:
        """Runs newest first: of `definition` (name or uuid), in `status` ("failed", or
        several), submitted in [`submitted_after`, `submitted_before`) (naive datetimes
        are UTC); at most `limit` (None: all). Read page by page; each is a `Run`."""
        statuses = status_values(status)

        def read(most: int | None) -> Iterator[Run]:
            found = self._runs.iter(
                limit=most,
                page_size=page_size,
                definition=definition,
                statuses=statuses,
                submitted_from=submitted_after,
                submitted_to=submitted_before,
            )
            return (self._handle(state) for state in found)

        return Paged(read, "runs", limit)


class Tokens:
    """`client.tokens`: the API tokens of the caller's workspace (admin tokens)."""

    def __init__(self, client: TokensClient) -> None:
        self._client = client

    def create(
        self, name: str, role: str = "member", *, ttl: float | None = None
    ) -> access_service_pb2.CreateTokenResponse:
        """A new token: `secret` (shown only here) and `token`; `role` is admin, member,
        viewer or worker; `ttl` in seconds (None: no expiry)."""
        return self._client.create(name, role, ttl=ttl)

    def list(
        self, *, show_inactive: bool = False, limit: int | None = None
    ) -> Paged[access_pb2.Token]:
        """The tokens, newest first (never their secrets); revoked and expired ones too
        with `show_inactive`."""
        return Paged(
            lambda most: self._client.iter(show_inactive=show_inactive, limit=most),
            "tokens",
            limit,
        )

    def revoke(self, ref: str) -> access_pb2.Token:
        """Revoke the token with this uuid or prefix: it stops working at once."""
        return self._client.revoke(ref)


class Workspaces:
    """`client.workspaces`: create and list workspaces (admins of `default`)."""

    def __init__(self, client: WorkspacesClient) -> None:
        self._client = client

    def create(
        self, name: str, admin_token_name: str = ""
    ) -> access_service_pb2.CreateWorkspaceResponse:
        """A new workspace and its first admin token (`admin_secret`, shown only here)."""
        return self._client.create(name, admin_token_name)

    def list(self, *, limit: int | None = None) -> Paged[access_pb2.Workspace]:
        """The workspaces the token may see, by name."""
        return Paged(lambda most: self._client.iter(limit=most), "workspaces", limit)


class Audit:
    """`client.audit`: the audit trail of the caller's workspace (admin tokens)."""

    def __init__(self, client: AuditClient) -> None:
        self._client = client

    def list(self, *, action: str = "", limit: int | None = None) -> Paged[access_pb2.AuditEvent]:
        """Audit events, newest first; `action` keeps one kind, e.g. "run.cancel"."""
        return Paged(lambda most: self._client.iter(action=action, limit=most), "events", limit)


class Client:
    """A connection to a Batchyard server, for Python programs and notebooks.

    `server` is HOST:PORT (grpcs://HOST for TLS; default $BATCHYARD_SERVER, else
    localhost:50051); `token` the API token (default $BATCHYARD_TOKEN, else
    ~/.config/batchyard/token, else on this machine the one `batchyard dev` wrote);
    `tls` True, False, a `ClientTls` with a private CA or client certificate, or None
    to let the server address and $BATCHYARD_TLS decide. `timeout` is the deadline of
    each call in seconds. `retry` says how calls that are safe to repeat are retried
    when the server cannot be reached (None: never).

    Parts: `definitions`, `runs`, `tokens`, `workspaces`, `audit`; `run(run_id)` for a
    handle on an existing run; `sql(query, target=...)` for an ad-hoc query. Close it
    when done, or use it as a context manager.
    """

    def __init__(
        self,
        server: str | None = None,
        *,
        token: str | None = None,
        tls: bool | connection.ClientTls | None = None,
        timeout: float = connection.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = RetryPolicy(),  # noqa: B008 (frozen, shared safely)
    ) -> None:
        self.server = connection.resolve_target(server)
        """The server's address."""
        self.timeout = timeout
        """The deadline of each call, in seconds."""
        self.retry = RetryInterceptor(retry or NO_RETRY)
        """The retrying interceptor (its `retries` counts the retries made)."""
        self._plain = connection.channel(server, timeout=timeout, token=token, tls=tls)
        self._channel = grpc.intercept_channel(self._plain, self.retry)
        self._runs = RunsClient(self._channel, timeout=timeout)
        self._logs = LogsClient(self._channel, timeout=timeout)
        self.definitions = Definitions(DefinitionsClient(self._channel, timeout=timeout))
        """Create, get, list, update and delete definitions."""
        self.runs = Runs(self._runs, self._logs)
        """Submit, get and list runs."""
        self.tokens = Tokens(TokensClient(self._channel, timeout=timeout))
        """API tokens (admin)."""
        self.workspaces = Workspaces(WorkspacesClient(self._channel, timeout=timeout))
        """Workspaces (admin of `default`)."""
        self.audit = Audit(AuditClient(self._channel, timeout=timeout))
        """The audit trail (admin)."""

    def run(self, run_id: str) -> Run:
        """A handle on the existing run `run_id`, read now (RunNotFoundError if none)."""
        return self.runs.get(run_id)

    def sql(
        self,
        query: str,
        *,
        target: str,
        timeout: float | None = None,
        queue: str | None = None,
        request_id: str = "",
    ) -> Run:
        """Submit an ad-hoc SQL run of `query` against the database the workers know as
        `target`; once it succeeded, its last result set is the result "result.csv"."""
        return self.runs.submit(
            config=sql_config(query, target), timeout=timeout, queue=queue, request_id=request_id
        )

    @property
    def channel(self) -> grpc.Channel:
        """The gRPC channel (token, deadline and retries applied), for generated stubs."""
        return self._channel

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._plain.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(server={self.server!r})"
