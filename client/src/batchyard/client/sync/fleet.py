"""`client.workers` of the synchronous face: the workers of the caller's workspace."""

from __future__ import annotations

from batchyard.client.core.part import Part
from batchyard.client.core.requests import get_worker_request, list_workers
from batchyard.client.sync.call import Caller
from batchyard.client.sync.paging import Paged, listing
from batchyard.v1 import fleet_pb2, fleet_service_pb2_grpc


class Workers(Part[fleet_service_pb2_grpc.FleetServiceStub, Caller]):
    """`client.workers`: the workers serving the caller's workspace (any role)."""

    def list(self, *, limit: int | None = None, page_size: int = 0) -> Paged[fleet_pb2.Worker]:
        """The live workers (seen within the lease TTL), by id."""
        return listing(
            self._call, self._stub.ListWorkers, list_workers(), limit=limit, page_size=page_size
        )

    def get(self, worker_id: str) -> fleet_pb2.Worker:
        """One worker, live or gone, by its id (NotFoundError if the server never saw it)."""
        return self._call(self._stub.GetWorker, get_worker_request(worker_id)).worker
