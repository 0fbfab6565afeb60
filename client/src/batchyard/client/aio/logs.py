"""`client.logs` of the asyncio face: read and follow run logs, awaited (the requests
are built by `batchyard.client.core.logs.LogReader`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from batchyard.client.aio.call import AsyncCaller
from batchyard.client.aio.streams import AsyncLogFollower
from batchyard.client.core.logs import LogReader
from batchyard.client.core.part import Part
from batchyard.client.core.streams import OutageListener
from batchyard.v1 import (
    log_pb2,
    log_service_pb2_grpc,  # noqa: F401 (its Async stub, quoted above: typing only)
)
from batchyard.v1 import log_service_pb2 as pb


class AsyncLogsClient(
    LogReader[AsyncIterator[log_pb2.LogEntry], AsyncLogFollower],
    Part["log_service_pb2_grpc.LogServiceAsyncStub", AsyncCaller],
):
    """Read and follow run logs, awaited (`client.logs`; see `LogReader`): ``async for``
    over `iter(...)` and `follow(...)`, ``await page(...)``."""

    async def page(
        self, run_id: str, *, page_size: int = 0, page_token: str = "", **filters: Any
    ) -> pb.GetLogsResponse:
        """One page of stored entries, with the filters of `iter` (see `LogsClient.page`)."""
        request = self._page_request(run_id, page_size, page_token, **filters)
        return await self._call(self._stub.GetLogs, request, idempotent=True)

    async def _pages(self, request: pb.GetLogsRequest) -> AsyncIterator[log_pb2.LogEntry]:
        while True:
            page = await self._call(self._stub.GetLogs, request, idempotent=True)
            for entry in page.entries:
                yield entry
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def _follower(
        self,
        request: pb.TailLogsRequest,
        reconnect_timeout: float,
        on_outage: OutageListener | None = None,
    ) -> AsyncLogFollower:
        return AsyncLogFollower(
            self._stub, request, reconnect_timeout=reconnect_timeout, on_outage=on_outage
        )
