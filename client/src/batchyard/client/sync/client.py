"""`Client`: the synchronous Python SDK — definitions, runs, logs, results, access.

    from batchyard.client import Client

    with Client() as client:                       # $BATCHYARD_SERVER, $BATCHYARD_TOKEN
        client.definitions.create("greet.yaml")
        run = client.runs.submit("greet", args=["batchyard"], payload={"day": "monday"})
        run.wait()                                 # prints progress; raises RunFailedError
        run.results().download_files("out")

Every call has a deadline (`timeout` seconds); calls that are safe to repeat (reads,
and a submit with a `request_id`) are retried on UNAVAILABLE (see `RetryPolicy`). Each
method is a request from `batchyard.client.core.requests` made through the call helper
(`batchyard.client.sync.call.Caller`); `batchyard.client.aio` is the same, awaited.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import grpc

from batchyard.client import connection
from batchyard.client.core.client import ClientBase, Tls
from batchyard.client.core.part import Part
from batchyard.client.core.pipeline import PipelineBuilder
from batchyard.client.core.requests import (
    DependsOn,
    Payload,
    StatusFilter,
    ingest_config,
    list_definitions,
    sql_config,
    status_values,
    update_definition_request,
)
from batchyard.client.core.retry import RetryPolicy
from batchyard.client.specs import DefinitionSpec, load_definition
from batchyard.client.sync.access import Audit, Tokens, Workspaces
from batchyard.client.sync.call import Caller, RetryInterceptor
from batchyard.client.sync.fleet import Workers
from batchyard.client.sync.logs import LogsClient
from batchyard.client.sync.paging import Paged, listing
from batchyard.client.sync.queues import Queues
from batchyard.client.sync.results import RunResults
from batchyard.client.sync.run import Run
from batchyard.client.sync.runs import RunsClient
from batchyard.client.sync.schedules import Retention, Schedules
from batchyard.v1 import (
    access_service_pb2_grpc,
    definition_pb2,
    definition_service_pb2_grpc,
    fleet_service_pb2_grpc,
    queue_service_pb2_grpc,
    retention_service_pb2_grpc,
    run_pb2,
    schedule_service_pb2_grpc,
)
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1.job_pb2 import JobConfig


class Definitions(Part[definition_service_pb2_grpc.DefinitionServiceStub, Caller]):
    """`client.definitions`: create, get, list, update and delete job definitions.

    A definition is named by its name or uuid; one is given as a `batchyard.v1.Definition`
    message, a mapping of its fields (the protobuf JSON mapping, as in a definition
    file), or the path of a JSON or YAML definition file.
    """

    def create(self, definition: DefinitionSpec) -> definition_pb2.Definition:
        """Create it (version 1) and return it as stored (DefinitionExistsError if the
        name is taken; InvalidArgumentError naming the bad fields)."""
        request = dpb.CreateDefinitionRequest(definition=load_definition(definition)[0])
        return self._call(self._stub.CreateDefinition, request).definition

    def get(self, ref: str, version: int = 0) -> definition_pb2.Definition:
        """The definition `ref` (name or uuid), at `version` or the current one."""
        request = dpb.GetDefinitionRequest(definition=ref, version=version)
        return self._call(self._stub.GetDefinition, request, idempotent=True).definition

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
        return listing(
            self._call,
            self._stub.ListDefinitions,
            list_definitions(prefix, type),
            limit=limit,
            page_size=page_size,
        )

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
        request = update_definition_request(ref, message, fields, paths, expected_version)
        return self._call(self._stub.UpdateDefinition, request).definition

    def delete(self, ref: str) -> None:
        """Delete it; its name becomes free. Runs keep the version they pinned."""
        self._call(self._stub.DeleteDefinition, dpb.DeleteDefinitionRequest(definition=ref))


class Pipeline(PipelineBuilder):
    """A pipeline of the synchronous client: `add` steps, then `submit()`."""

    def __init__(self, runs: Runs) -> None:
        super().__init__()
        self._runs = runs

    def submit(self) -> list[Run]:
        """Submit every step in one atomic call; one Run per step, in order."""
        return self._runs.submit_pipeline(self)


class Runs:
    """`client.runs`: submit runs, list them, get one by id; cancel, delete and list the
    results of one by id without reading it first."""

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
        array_size: int = 0,
        payloads: Sequence[Payload] | None = None,
        depends_on: Sequence[DependsOn] = (),
    ) -> Run:
        """Submit a run of `definition` (name or uuid; the run pins its current version)
        or of an inline `config`, and return its handle.

        `array_size` N (2 to 10,000) makes an array run: one parent and N children, each
        a full run with $BATCHYARD_ARRAY_INDEX (0-based) and $BATCHYARD_ARRAY_SIZE, and
        `payloads` (one per child, each ≤ 1 MiB) instead of one shared `payload`. The
        run waits for each of `depends_on` (a run or its uuid; `(run, "any")` for any
        end, not only a success; see `batchyard.client.core.requests.DependsOn`).

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
            payload=payload,
            request_id=request_id,
            timeout=timeout,
            retries=retries,
            queue=queue,
            priority=priority,
            array_size=array_size,
            payloads=payloads,
            depends_on=depends_on,
        )
        return self._handle(response.run, deduplicated=response.deduplicated)

    def pipeline(self) -> Pipeline:
        """A pipeline to build step by step and submit in one atomic call (see
        `batchyard.client.core.pipeline`)."""
        return Pipeline(self)

    def submit_pipeline(self, pipeline: PipelineBuilder) -> list[Run]:
        """Submit the steps of `pipeline` in one call; one Run per step, in order."""
        responses = self._runs.submit_many(pipeline.request().requests)
        return [self._handle(r.run, deduplicated=r.deduplicated) for r in responses]

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
        parent: str = "",
        include_children: bool = False,
    ) -> Paged[Run]:
        """Runs newest first: of `definition` (name or uuid), in `status` ("failed", or
        several), submitted in [`submitted_after`, `submitted_before`) (naive datetimes
        are UTC); at most `limit` (None: all). Children of array runs only with
        `include_children`, or those of the array `parent`. Read page by page; each is
        a `Run`."""
        filters = {
            "definition": definition,
            "statuses": status_values(status),
            "submitted_from": submitted_after,
            "submitted_to": submitted_before,
            "parent": parent,
            "include_children": include_children,
        }

        def read(most: int | None) -> Iterator[Run]:
            found = self._runs.iter(limit=most, page_size=page_size, **filters)
            return (self._handle(state) for state in found)

        return Paged(read, "runs", limit)

    def cancel(self, run_id: str, reason: str = "") -> Run:
        """Cancel the run with that uuid and return its handle (see `Run.cancel`)."""
        return self._handle(self._runs.cancel(run_id, reason))

    def delete(self, run_id: str) -> None:
        """Delete the finished run with that uuid, its logs and results (see `Run.delete`)."""
        self._runs.delete(run_id)

    def results(self, run_id: str) -> RunResults:
        """The result files of the run with that uuid, listed now (see `Run.results`)."""
        return self._runs.results(run_id)


class Client(ClientBase[Caller]):
    """A connection to a Batchyard server, for Python programs and notebooks (the
    arguments: see `ClientBase`).

    Parts: `definitions`, `runs`, `logs`, `tokens`, `workspaces`, `audit`, `workers`;
    `run(run_id)`
    for a handle on an existing run; `sql(query, target=...)` for an ad-hoc query.
    Close it when done, or use it as a context manager.
    """

    @staticmethod
    def _caller(policy: RetryPolicy, timeout: float) -> Caller:
        return Caller(policy, timeout)

    def _connect(
        self, server: str | None, token: str | None, tls: Tls, policy: RetryPolicy
    ) -> None:
        self._plain = connection.channel(server, timeout=self.timeout, token=token, tls=tls)
        self._channel = grpc.intercept_channel(self._plain, RetryInterceptor(policy))
        self.logs = LogsClient(self._plain, call=self.retry)
        """Read and follow the log of a run by its uuid."""
        self.definitions = Definitions(
            definition_service_pb2_grpc.DefinitionServiceStub(self._plain), self.retry
        )
        """Create, get, list, update and delete definitions."""
        self.runs = Runs(RunsClient(self._plain, call=self.retry), self.logs)
        """Submit, get and list runs."""
        self.tokens = Tokens(access_service_pb2_grpc.TokenServiceStub(self._plain), self.retry)
        """API tokens (admin)."""
        self.workspaces = Workspaces(
            access_service_pb2_grpc.WorkspaceServiceStub(self._plain), self.retry
        )
        """Workspaces (admin of `default`)."""
        self.audit = Audit(access_service_pb2_grpc.AuditServiceStub(self._plain), self.retry)
        """The audit trail (admin)."""
        self.queues = Queues(queue_service_pb2_grpc.QueueServiceStub(self._plain), self.retry)
        """Queues: create, read with their numbers, pause, resume, limit, delete."""
        self.schedules = Schedules(
            schedule_service_pb2_grpc.ScheduleServiceStub(self._plain), self.retry
        )
        """Schedules: definitions run on a timetable."""
        self.retention = Retention(
            retention_service_pb2_grpc.RetentionServiceStub(self._plain), self.retry
        )
        """Retention policies and bulk deletion of finished runs."""
        self.workers = Workers(fleet_service_pb2_grpc.FleetServiceStub(self._plain), self.retry)
        """The workers serving the workspace."""

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

    def ingest(
        self,
        uri: str,
        *,
        target: str,
        table: str,
        format: str = "csv",
        regex: str = "",
        max_files: int = 0,
        dry_run: bool = False,
        max_bad_rows: int | None = None,
        timeout: float | None = None,
        queue: str | None = None,
        request_id: str = "",
        **options: Any,
    ) -> Run:
        """Submit an ad-hoc INGEST run: the S3 object or prefix `uri` (keys filtered by
        `regex`, at most `max_files`) loaded into `table` ("schema.table") of the database
        the workers know as `target`, each file exactly once (a ledger in that database;
        running it again loads only what is missing). `format`: "csv" or "ndjson";
        `dry_run` lists, infers and checks, and loads nothing; `max_bad_rows` skips up to
        that many bad rows (default: fail at the first); `options` are those of
        `core.requests.ingest_config` (columns, csv, input_concurrency, region,
        endpoint_url). Its task counts are `run.state.tasks`."""
        config = ingest_config(
            uri,
            target=target,
            table=table,
            format=format,
            regex=regex,
            max_files=max_files,
            dry_run=dry_run,
            max_bad_rows=max_bad_rows,
            **options,
        )
        return self.runs.submit(config=config, timeout=timeout, queue=queue, request_id=request_id)

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
