"""`AsyncClient`: the Python SDK for asyncio programs — `Client`'s surface, awaited.

from batchyard.client import AsyncClient

async with AsyncClient() as client:
    run = await client.runs.submit("greet", args=["batchyard"])
    await run.wait()
    async for run in client.runs.list(status="failed", limit=10):
        print(run.id, run.reason)

Each method is a request from `batchyard.client.core.requests` made through the call
helper (`batchyard.client.aio.call.AsyncCaller`), as in `batchyard.client.sync`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import grpc

from batchyard.client import connection
from batchyard.client.aio.access import AsyncAudit, AsyncTokens, AsyncWorkspaces
from batchyard.client.aio.call import AsyncCaller
from batchyard.client.aio.fleet import AsyncWorkers
from batchyard.client.aio.logs import AsyncLogsClient
from batchyard.client.aio.paging import AsyncPaged, alisting
from batchyard.client.aio.queues import AsyncQueues
from batchyard.client.aio.results import AsyncRunResults
from batchyard.client.aio.run import AsyncRun
from batchyard.client.aio.schedules import AsyncRetention, AsyncSchedules
from batchyard.client.aio.service import AsyncRunService
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
from batchyard.v1 import (
    access_service_pb2_grpc,
    definition_pb2,
    definition_service_pb2_grpc,
    fleet_service_pb2_grpc,
    log_service_pb2_grpc,
    queue_service_pb2_grpc,
    retention_service_pb2_grpc,
    run_service_pb2_grpc,
    schedule_service_pb2_grpc,
)
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1.job_pb2 import JobConfig


class AsyncDefinitions(Part["definition_service_pb2_grpc.DefinitionServiceAsyncStub", AsyncCaller]):
    """`client.definitions` of the asyncio client (see `Definitions`)."""

    async def create(self, definition: DefinitionSpec) -> definition_pb2.Definition:
        """Create it (version 1) and return it as stored."""
        request = dpb.CreateDefinitionRequest(definition=load_definition(definition)[0])
        return (await self._call(self._stub.CreateDefinition, request)).definition

    async def get(self, ref: str, version: int = 0) -> definition_pb2.Definition:
        """The definition `ref` (name or uuid), at `version` or the current one."""
        request = dpb.GetDefinitionRequest(definition=ref, version=version)
        return (await self._call(self._stub.GetDefinition, request, idempotent=True)).definition

    def list(
        self,
        *,
        prefix: str = "",
        type: str | None = None,
        limit: int | None = None,
        page_size: int = 0,
    ) -> AsyncPaged[definition_pb2.Definition]:
        """Definitions by name (see `Definitions.list`)."""
        spec = list_definitions(prefix, type)
        return alisting(
            self._call, self._stub.ListDefinitions, spec, limit=limit, page_size=page_size
        )

    async def update(
        self,
        ref: str,
        changes: DefinitionSpec,
        paths: Sequence[str] | None = None,
        *,
        expected_version: int = 0,
    ) -> definition_pb2.Definition:
        """Replace the fields named by `paths` (see `Definitions.update`)."""
        message, fields = load_definition(changes)
        request = update_definition_request(ref, message, fields, paths, expected_version)
        return (await self._call(self._stub.UpdateDefinition, request)).definition

    async def delete(self, ref: str) -> None:
        """Delete it; its name becomes free."""
        await self._call(self._stub.DeleteDefinition, dpb.DeleteDefinitionRequest(definition=ref))


class AsyncPipeline(PipelineBuilder):
    """A pipeline of the asyncio client: `add` steps, then `await submit()`."""

    def __init__(self, runs: AsyncRuns) -> None:
        super().__init__()
        self._runs = runs

    async def submit(self) -> list[AsyncRun]:
        """Submit every step in one atomic call; one AsyncRun per step, in order."""
        return await self._runs.submit_pipeline(self)


class AsyncRuns:
    """`client.runs` of the asyncio client (see `Runs`)."""

    def __init__(self, service: AsyncRunService) -> None:
        self._service = service

    async def submit(
        self,
        definition: str | None = None,
        *,
        config: JobConfig | None = None,
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        secret_env: Mapping[str, str] | None = None,
        payload: Payload = None,
        request_id: str = "",
        timeout: float | None = None,  # noqa: ASYNC109 (the run's time limit, as in Client)
        retries: int | None = None,
        queue: str | None = None,
        priority: int | None = None,
        array_size: int = 0,
        payloads: Sequence[Payload] | None = None,
        depends_on: Sequence[DependsOn] = (),
    ) -> AsyncRun:
        """Submit a run and return its handle (see `Runs.submit`)."""
        response = await self._service.submit(
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
        return AsyncRun(self._service, response.run, deduplicated=response.deduplicated)

    def pipeline(self) -> AsyncPipeline:
        """A pipeline to build step by step and submit in one atomic call (see
        `Runs.pipeline`)."""
        return AsyncPipeline(self)

    async def submit_pipeline(self, pipeline: PipelineBuilder) -> list[AsyncRun]:
        """Submit the steps of `pipeline` in one call; one AsyncRun per step, in order."""
        responses = await self._service.submit_many(pipeline.request())
        return [AsyncRun(self._service, r.run, deduplicated=r.deduplicated) for r in responses]

    async def get(self, run_id: str) -> AsyncRun:
        """The run with that uuid, read now (RunNotFoundError if there is none)."""
        return AsyncRun(self._service, await self._service.get(run_id))

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
    ) -> AsyncPaged[AsyncRun]:
        """Runs newest first (see `Runs.list`); each is an `AsyncRun`."""
        service = self._service
        statuses = status_values(status)

        async def read(most: int | None) -> AsyncIterator[AsyncRun]:
            found = service.iter(
                limit=most,
                page_size=page_size,
                definition=definition,
                statuses=statuses,
                submitted_from=submitted_after,
                submitted_to=submitted_before,
                parent=parent,
                include_children=include_children,
            )
            async for state in found:
                yield AsyncRun(service, state)

        return AsyncPaged(read, "runs", limit)

    async def cancel(self, run_id: str, reason: str = "") -> AsyncRun:
        """Cancel the run with that uuid and return its handle (see `Run.cancel`)."""
        return AsyncRun(self._service, await self._service.cancel(run_id, reason))

    async def delete(self, run_id: str) -> None:
        """Delete the finished run with that uuid, its logs and results."""
        await self._service.delete(run_id)

    async def results(self, run_id: str) -> AsyncRunResults:
        """The result files of the run with that uuid, listed now."""
        return await self._service.results(run_id)


class AsyncClient(ClientBase[AsyncCaller]):
    """The asyncio client: `Client`'s arguments (see `ClientBase`) and surface, its calls
    awaited.

    `definitions`, `runs`, `logs`, `tokens`, `workspaces`, `audit` (as `Client`'s, their
    calls awaited); `await run(run_id)`; `await sql(query, target=...)`.
    Close it when done (`await client.close()`), or use ``async with``.
    """

    @staticmethod
    def _caller(policy: RetryPolicy, timeout: float) -> AsyncCaller:
        return AsyncCaller(policy, timeout)

    def _connect(
        self, server: str | None, token: str | None, tls: Tls, policy: RetryPolicy
    ) -> None:
        self._channel = connection.aio_channel(server, token=token, tls=tls)
        call = self.retry
        self.logs = AsyncLogsClient(log_service_pb2_grpc.LogServiceStub(self._channel), call)
        runs = AsyncRunService(run_service_pb2_grpc.RunServiceStub(self._channel), self.logs, call)
        self.definitions = AsyncDefinitions(
            definition_service_pb2_grpc.DefinitionServiceStub(self._channel), call
        )
        self.runs = AsyncRuns(runs)
        self.tokens = AsyncTokens(access_service_pb2_grpc.TokenServiceStub(self._channel), call)
        self.workspaces = AsyncWorkspaces(
            access_service_pb2_grpc.WorkspaceServiceStub(self._channel), call
        )
        self.audit = AsyncAudit(access_service_pb2_grpc.AuditServiceStub(self._channel), call)
        self.queues = AsyncQueues(queue_service_pb2_grpc.QueueServiceStub(self._channel), call)
        self.schedules = AsyncSchedules(
            schedule_service_pb2_grpc.ScheduleServiceStub(self._channel), call
        )
        self.retention = AsyncRetention(
            retention_service_pb2_grpc.RetentionServiceStub(self._channel), call
        )
        self.workers = AsyncWorkers(fleet_service_pb2_grpc.FleetServiceStub(self._channel), call)

    async def run(self, run_id: str) -> AsyncRun:
        """A handle on the existing run `run_id`, read now (RunNotFoundError if none)."""
        return await self.runs.get(run_id)

    async def sql(
        self,
        query: str,
        *,
        target: str,
        timeout: float | None = None,  # noqa: ASYNC109 (the run's time limit, as in Client)
        queue: str | None = None,
        request_id: str = "",
    ) -> AsyncRun:
        """Submit an ad-hoc SQL run (see `Client.sql`)."""
        return await self.runs.submit(
            config=sql_config(query, target), timeout=timeout, queue=queue, request_id=request_id
        )

    async def ingest(
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
        timeout: float | None = None,  # noqa: ASYNC109 (the run's time limit)
        queue: str | None = None,
        request_id: str = "",
        **options: Any,
    ) -> AsyncRun:
        """Submit an ad-hoc INGEST run (see `Client.ingest`)."""
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
        return await self.runs.submit(
            config=config, timeout=timeout, queue=queue, request_id=request_id
        )

    @property
    def channel(self) -> grpc.aio.Channel:
        """The gRPC channel (with the token), for generated stubs."""
        return self._channel

    async def close(self) -> None:
        """Close the connection."""
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
