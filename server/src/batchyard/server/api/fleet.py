"""FleetService: the workers of the caller's workspace, for any role that may read.

A worker is listed while it is alive (seen within the lease TTL: a lease call, a
heartbeat, or an open long-poll); GetWorker also answers for one that went away.
"""

from __future__ import annotations

from typing import Any

import grpc

from batchyard.server.api.auth import current_principal
from batchyard.server.api.job_convert import timestamp
from batchyard.server.api.workers import WORKER_ID
from batchyard.server.db import fleet
from batchyard.server.db.pool import Pool
from batchyard.server.domain import paging
from batchyard.server.domain.errors import FieldViolation, InvalidArgument, NotFound
from batchyard.v1 import fleet_pb2, fleet_service_pb2_grpc
from batchyard.v1 import fleet_service_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class WorkerNotFound(NotFound):
    reason = "WORKER_NOT_FOUND"

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"worker {worker_id!r} not found")


def worker_to_pb(w: fleet.WorkerRecord) -> fleet_pb2.Worker:
    return fleet_pb2.Worker(
        worker_id=w.worker_id,
        host=w.host,
        version=w.version,
        queues=w.queues,
        slots=w.slots,
        slots_busy=w.slots_busy,
        running_attempts=[
            fleet_pb2.WorkerAttempt(
                run=str(a.run), attempt=a.attempt, lease_expire_time=timestamp(a.lease_expires_at)
            )
            for a in w.running
        ],
        last_heartbeat_time=timestamp(w.last_seen_at),
        start_time=timestamp(w.started_at),
        first_seen_time=timestamp(w.first_seen_at),
        alive=w.alive,
        fenced=w.fenced,
    )


class FleetServicer(fleet_service_pb2_grpc.FleetServiceServicer):
    def __init__(self, pool: Pool, ttl_seconds: float) -> None:
        self._pool = pool
        self._ttl = ttl_seconds

    async def ListWorkers(
        self, request: pb.ListWorkersRequest, context: Context
    ) -> pb.ListWorkersResponse:
        workspace = current_principal().workspace_id
        size = paging.page_size(request.page_size, DEFAULT_PAGE, MAX_PAGE)
        key = paging.decode(request.page_token, {"list": "workers"})
        after = str(key[0]) if key else None
        found = await fleet.list_live(self._pool, workspace, self._ttl, after, size + 1)
        more = len(found) > size
        found = found[:size]
        token = paging.encode([found[-1].worker_id], {"list": "workers"}) if more else ""
        return pb.ListWorkersResponse(
            workers=[worker_to_pb(w) for w in found], next_page_token=token
        )

    async def GetWorker(
        self, request: pb.GetWorkerRequest, context: Context
    ) -> pb.GetWorkerResponse:
        if not WORKER_ID.match(request.worker_id):
            raise InvalidArgument(
                [FieldViolation("worker_id", "1 to 200 printable characters, no spaces")]
            )
        workspace = current_principal().workspace_id
        found = await fleet.get(self._pool, workspace, request.worker_id, self._ttl)
        if found is None:
            raise WorkerNotFound(request.worker_id)
        return pb.GetWorkerResponse(worker=worker_to_pb(found))
