"""`AsyncClient`: the Python SDK for asyncio programs — `Client`'s surface, awaited.

from batchyard.client import AsyncClient

async with AsyncClient() as client:
    run = await client.runs.submit("greet", args=["batchyard"])
    await run.wait()
    async for run in client.runs.list(status="failed", limit=10):
        print(run.id, run.reason)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import field_mask_pb2, timestamp_pb2

from batchyard.client import connection
from batchyard.client.access import ROLES
from batchyard.client.aio_run import AsyncRun, AsyncRunService
from batchyard.client.errors import from_rpc_error
from batchyard.client.paging import AsyncPaged, apaged
from batchyard.client.retry import NO_RETRY, AsyncRetry, RetryPolicy
from batchyard.client.runs import MAX_PAGE_SIZE, JobConfig, sql_config, submit_request
from batchyard.client.sdk import (
    Payload,
    StatusFilter,
    job_type_value,
    payload_bytes,
    status_values,
)
from batchyard.client.specs import DefinitionSpec, load_definition
from batchyard.v1 import (
    access_pb2,
    access_service_pb2_grpc,
    definition_pb2,
    definition_service_pb2_grpc,
    log_service_pb2_grpc,
    run_service_pb2_grpc,
)
from batchyard.v1 import access_service_pb2 as apb
from batchyard.v1 import definition_service_pb2 as dpb
from batchyard.v1 import run_service_pb2 as rpb

T = TypeVar("T")
R = TypeVar("R")


class _Caller:
    """Makes one unary call: the client's deadline, retries when safe, typed errors."""

    def __init__(self, retry: AsyncRetry, timeout: float) -> None:
        self._retry = retry
        self._timeout = timeout

    async def __call__(
        self, method: Callable[..., Awaitable[R]], request: Any, *, idempotent: bool = False
    ) -> R:
        try:
            return await self._retry.call(
                method, request, seconds=self._timeout, idempotent=idempotent
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from exc


def _timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(when)
    return value


class AsyncDefinitions:
    """`client.definitions` of the asyncio client (see `Definitions`)."""

    def __init__(
        self, stub: definition_service_pb2_grpc.DefinitionServiceAsyncStub, call: _Caller
    ) -> None:
        self._stub = stub
        self._call = call

    async def create(self, definition: DefinitionSpec) -> definition_pb2.Definition:
        """Create it (version 1) and return it as stored."""
        message, _ = load_definition(definition)
        request = dpb.CreateDefinitionRequest(definition=message)
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
        job_type = job_type_value(type)

        async def fetch(size: int, token: str) -> dpb.ListDefinitionsResponse:
            request = dpb.ListDefinitionsRequest(
                page_size=size, page_token=token, name_prefix=prefix, type=job_type
            )
            return await self._call(self._stub.ListDefinitions, request, idempotent=True)

        def read(most: int | None) -> AsyncIterator[definition_pb2.Definition]:
            return apaged(
                fetch,
                lambda page: page.definitions,
                limit=most,
                page_size=page_size,
                max_page_size=MAX_PAGE_SIZE,
            )

        return AsyncPaged(read, "definitions", limit)

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
        mask = list(paths) if paths is not None else fields
        if not mask:
            raise ValueError("the changes set none of name, description, config: name paths")
        request = dpb.UpdateDefinitionRequest(
            definition=ref,
            changes=message,
            update_mask=field_mask_pb2.FieldMask(paths=mask),
            expected_version=expected_version,
        )
        return (await self._call(self._stub.UpdateDefinition, request)).definition

    async def delete(self, ref: str) -> None:
        """Delete it; its name becomes free."""
        await self._call(self._stub.DeleteDefinition, dpb.DeleteDefinitionRequest(definition=ref))


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
    ) -> AsyncRun:
        """Submit a run and return its handle (see `Runs.submit`)."""
        request = submit_request(
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
        service = self._service
        response = await service.call(service.runs.SubmitRun, request, idempotent=bool(request_id))
        return AsyncRun(service, response.run, deduplicated=response.deduplicated)

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
    ) -> AsyncPaged[AsyncRun]:
        """Runs newest first (see `Runs.list`); each is an `AsyncRun`."""
        service = self._service
        statuses = status_values(status)

        async def fetch(size: int, token: str) -> rpb.ListRunsResponse:
            request = rpb.ListRunsRequest(
                page_size=size, page_token=token, definition=definition, statuses=statuses
            )
            if submitted_after is not None:
                request.submit_time_from.CopyFrom(_timestamp(submitted_after))
            if submitted_before is not None:
                request.submit_time_to.CopyFrom(_timestamp(submitted_before))
            page: rpb.ListRunsResponse = await service.call(
                service.runs.ListRuns, request, idempotent=True
            )
            return page

        async def read(most: int | None) -> AsyncIterator[AsyncRun]:
            found = apaged(
                fetch,
                lambda page: page.runs,
                limit=most,
                page_size=page_size,
                max_page_size=MAX_PAGE_SIZE,
            )
            async for state in found:
                yield AsyncRun(service, state)

        return AsyncPaged(read, "runs", limit)


class AsyncTokens:
    """`client.tokens` of the asyncio client (admin tokens)."""

    def __init__(self, stub: access_service_pb2_grpc.TokenServiceAsyncStub, call: _Caller):
        self._stub = stub
        self._call = call

    async def create(
        self, name: str, role: str = "member", *, ttl: float | None = None
    ) -> apb.CreateTokenResponse:
        """A new token (`secret` shown only here); `ttl` in seconds (None: no expiry)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        request = apb.CreateTokenRequest(name=name, role=ROLES[role])
        if ttl is not None:
            request.ttl.FromNanoseconds(round(ttl * 1e9))
        return await self._call(self._stub.CreateToken, request)

    def list(
        self, *, show_inactive: bool = False, limit: int | None = None
    ) -> AsyncPaged[access_pb2.Token]:
        """The tokens, newest first (never their secrets)."""

        async def fetch(size: int, token: str) -> apb.ListTokensResponse:
            request = apb.ListTokensRequest(
                page_size=size, page_token=token, show_inactive=show_inactive
            )
            return await self._call(self._stub.ListTokens, request, idempotent=True)

        def read(most: int | None) -> AsyncIterator[access_pb2.Token]:
            return apaged(
                fetch, lambda p: p.tokens, limit=most, page_size=0, max_page_size=MAX_PAGE_SIZE
            )

        return AsyncPaged(read, "tokens", limit)

    async def revoke(self, ref: str) -> access_pb2.Token:
        """Revoke the token with this uuid or prefix."""
        return (await self._call(self._stub.RevokeToken, apb.RevokeTokenRequest(token=ref))).token


class AsyncWorkspaces:
    """`client.workspaces` of the asyncio client (admins of `default`)."""

    def __init__(self, stub: access_service_pb2_grpc.WorkspaceServiceAsyncStub, call: _Caller):
        self._stub = stub
        self._call = call

    async def create(self, name: str, admin_token_name: str = "") -> apb.CreateWorkspaceResponse:
        """A new workspace and its first admin token (`admin_secret`, shown only here)."""
        request = apb.CreateWorkspaceRequest(name=name, admin_token_name=admin_token_name)
        return await self._call(self._stub.CreateWorkspace, request)

    def list(self, *, limit: int | None = None) -> AsyncPaged[access_pb2.Workspace]:
        """The workspaces the token may see, by name."""

        async def fetch(size: int, token: str) -> apb.ListWorkspacesResponse:
            request = apb.ListWorkspacesRequest(page_size=size, page_token=token)
            return await self._call(self._stub.ListWorkspaces, request, idempotent=True)

        def read(most: int | None) -> AsyncIterator[access_pb2.Workspace]:
            return apaged(
                fetch, lambda p: p.workspaces, limit=most, page_size=0, max_page_size=MAX_PAGE_SIZE
            )

        return AsyncPaged(read, "workspaces", limit)


class AsyncAudit:
    """`client.audit` of the asyncio client (admin tokens)."""

    def __init__(self, stub: access_service_pb2_grpc.AuditServiceAsyncStub, call: _Caller):
        self._stub = stub
        self._call = call

    def list(
        self, *, action: str = "", limit: int | None = None
    ) -> AsyncPaged[access_pb2.AuditEvent]:
        """Audit events, newest first; `action` keeps one kind, e.g. "run.cancel"."""

        async def fetch(size: int, token: str) -> apb.ListAuditEventsResponse:
            request = apb.ListAuditEventsRequest(page_size=size, page_token=token, action=action)
            return await self._call(self._stub.ListAuditEvents, request, idempotent=True)

        def read(most: int | None) -> AsyncIterator[access_pb2.AuditEvent]:
            return apaged(
                fetch, lambda p: p.events, limit=most, page_size=0, max_page_size=MAX_PAGE_SIZE
            )

        return AsyncPaged(read, "events", limit)


class AsyncClient:
    """The asyncio client: `Client`'s arguments and surface, its calls awaited.

    `definitions`, `runs`, `tokens`, `workspaces`, `audit`; `await run(run_id)`;
    `await sql(query, target=...)`.
    Close it when done (`await client.close()`), or use ``async with``.
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
        self.retry = AsyncRetry(retry or NO_RETRY)
        """The retrying caller (its `retries` counts the retries made)."""
        self._channel = connection.aio_channel(server, token=token, tls=tls)
        call = _Caller(self.retry, timeout)
        self._service = AsyncRunService(
            run_service_pb2_grpc.RunServiceStub(self._channel),
            log_service_pb2_grpc.LogServiceStub(self._channel),
            call,
            timeout,
        )
        self.definitions = AsyncDefinitions(
            definition_service_pb2_grpc.DefinitionServiceStub(self._channel), call
        )
        """Create, get, list, update and delete definitions."""
        self.runs = AsyncRuns(self._service)
        """Submit, get and list runs."""
        self.tokens = AsyncTokens(access_service_pb2_grpc.TokenServiceStub(self._channel), call)
        """API tokens (admin)."""
        self.workspaces = AsyncWorkspaces(
            access_service_pb2_grpc.WorkspaceServiceStub(self._channel), call
        )
        """Workspaces (admin of `default`)."""
        self.audit = AsyncAudit(access_service_pb2_grpc.AuditServiceStub(self._channel), call)
        """The audit trail (admin)."""

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

    def __repr__(self) -> str:
        return f"AsyncClient(server={self.server!r})"
