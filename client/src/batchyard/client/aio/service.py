"""`AsyncRunService`: the RunService calls of the asyncio face, one thin method each —
`RunsClient`, awaited. `AsyncRuns` and `AsyncRun` are built on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from batchyard.client.aio.call import AsyncCaller
from batchyard.client.aio.logs import AsyncLogsClient
from batchyard.client.aio.paging import alisting
from batchyard.client.aio.results import AsyncRunResults
from batchyard.client.aio.streams import AsyncRunWatcher
from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.core.requests import list_results, list_runs, submit_request
from batchyard.client.core.streams import RECONNECT_TIMEOUT
from batchyard.v1 import run_pb2, run_service_pb2_grpc
from batchyard.v1 import run_service_pb2 as pb


class AsyncRunService:
    """The RunService calls the asyncio client makes (shared by the handles of one
    client), with `logs`, its log calls."""

    def __init__(
        self,
        stub: run_service_pb2_grpc.RunServiceAsyncStub,
        logs: AsyncLogsClient,
        call: AsyncCaller,
    ) -> None:
        self.stub = stub
        self.logs = logs
        self.call = call

    async def submit(self, definition: str | None = None, **options: Any) -> pb.SubmitRunResponse:
        """Submit a run (the options of `submit_request`)."""
        request = submit_request(definition, **options)
        return await self.call(self.stub.SubmitRun, request, idempotent=bool(request.request_id))

    async def submit_many(self, request: pb.BatchSubmitRunsRequest) -> list[pb.SubmitRunResponse]:
        """Submit many runs in one call, all or nothing."""
        return list((await self.call(self.stub.BatchSubmitRuns, request)).responses)

    async def get(self, run_id: str) -> run_pb2.Run:
        """The run with its attempts."""
        request = pb.GetRunRequest(run=run_id)
        return (await self.call(self.stub.GetRun, request, idempotent=True)).run

    def iter(
        self, *, limit: int | None = None, page_size: int = 0, **filters: Any
    ) -> AsyncIterator[run_pb2.Run]:
        """Runs newest first, at most `limit` (the filters of `list_runs`)."""
        spec = list_runs(**filters)
        return aiter(
            alisting(self.call, self.stub.ListRuns, spec, limit=limit, page_size=page_size)
        )

    async def cancel(self, run_id: str, reason: str = "") -> run_pb2.Run:
        """Cancel the run and return it (FailedPreconditionError once it has ended)."""
        request = pb.CancelRunRequest(run=run_id, reason=reason)
        return (await self.call(self.stub.CancelRun, request)).run

    async def delete(self, run_id: str) -> None:
        """Delete the finished run with its logs and results."""
        await self.call(self.stub.DeleteRun, pb.DeleteRunRequest(run=run_id))

    async def results(self, run_id: str) -> AsyncRunResults:
        """The run's result assets, every page listed now."""
        found = alisting(self.call, self.stub.ListRunResults, list_results(run_id), limit=None)
        listed = [result async for result in found]
        return AsyncRunResults(
            self.stub, run_id, listed, idle_timeout=self.call.timeout or DEFAULT_TIMEOUT
        )

    def watch(
        self, run_id: str, after_revision: int = 0, *, reconnect_timeout: float = RECONNECT_TIMEOUT
    ) -> AsyncRunWatcher:
        """Each new state of the run until it has ended (``async for``)."""
        return AsyncRunWatcher(
            self.stub, run_id, after_revision, reconnect_timeout=reconnect_timeout
        )
