"""Which workers are alive, for WorkerService: a LeaseRuns call records its worker (and
lifts a fence: the worker proved alive), and each look of its long-poll asks whether the
rescuer fenced it since the call began — a fenced worker's open long-polls answer empty,
so a run rescued from a frozen or cut-off worker goes to a live one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from batchyard.server.db import fleet
from batchyard.server.db.pool import Pool
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.v1 import worker_service_pb2 as pb

MAX_TEXT = 200
MAX_SLOTS = 10000


def arrival_from(request: pb.LeaseRunsRequest) -> fleet.Arrival:
    """What the worker says of itself, checked (InvalidArgument naming the field)."""
    violations = [
        FieldViolation(name, f"at most {MAX_TEXT} characters")
        for name, value in (("host", request.host), ("version", request.version))
        if len(value) > MAX_TEXT
    ]
    if not 0 <= request.slots <= MAX_SLOTS:
        violations.append(FieldViolation("slots", f"0 to {MAX_SLOTS}"))
    if not 0 <= request.slots_busy <= max(request.slots, 0):
        violations.append(FieldViolation("slots_busy", "0 to slots"))
    started = None
    if request.HasField("start_time"):
        try:
            started = request.start_time.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            violations.append(FieldViolation("start_time", "not a valid time"))
    if violations:
        raise InvalidArgument(violations)
    return fleet.Arrival(
        worker_id=request.worker_id,
        host=request.host,
        version=request.version,
        queues=sorted(set(request.queues)),
        slots=request.slots,
        slots_busy=request.slots_busy,
        started_at=started,
    )


class Presence:
    def __init__(self, pool: Pool, ttl_seconds: float) -> None:
        self._pool = pool
        self._coalesce = max(0.1, ttl_seconds / 6)

    async def arrive(self, workspace: UUID, arrival: fleet.Arrival) -> datetime:
        return await fleet.arrived(self._pool, workspace, arrival, self._coalesce)

    async def fenced(self, workspace: UUID, worker_id: str, call_at: datetime) -> bool:
        return await fleet.fenced_since(self._pool, workspace, worker_id, call_at, self._coalesce)
