"""`client.workers` of the asyncio face: `batchyard.client.sync.fleet`, awaited."""

from __future__ import annotations

from batchyard.client.aio.call import AsyncCaller
from batchyard.client.aio.paging import AsyncPaged, alisting
from batchyard.client.core.part import Part
from batchyard.client.core.requests import get_worker_request, list_workers
from batchyard.v1 import (
    fleet_pb2,
    fleet_service_pb2_grpc,  # noqa: F401 (its Async stubs, quoted above: typing only)
)


class AsyncWorkers(Part["fleet_service_pb2_grpc.FleetServiceAsyncStub", AsyncCaller]):
    """`client.workers` of the asyncio client (see `Workers`)."""

    def list(self, *, limit: int | None = None, page_size: int = 0) -> AsyncPaged[fleet_pb2.Worker]:
        """The live workers (seen within the lease TTL), by id."""
        return alisting(
            self._call, self._stub.ListWorkers, list_workers(), limit=limit, page_size=page_size
        )

    async def get(self, worker_id: str) -> fleet_pb2.Worker:
        """One worker, live or gone, by its id (NotFoundError if the server never saw it)."""
        return (await self._call(self._stub.GetWorker, get_worker_request(worker_id))).worker
