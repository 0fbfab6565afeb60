"""WaitForCancel: a worker's long-poll for one running attempt, answered as soon as the
run's cancel is requested.

CancelRun (on any replica) pokes `cancel_key(run)`: this replica's waiters wake at once,
the other replicas' through NOTIFY on their LISTEN connection (db/wakeups.py). A lost
notification costs at most `poll_seconds` (the waiter looks again), never the cancel:
RenewLease still carries it too.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc

from batchyard.server.api.fences import fence_from
from batchyard.server.api.job_convert import seconds
from batchyard.server.db.cancels import cancel_requested
from batchyard.server.db.pool import Pool
from batchyard.server.db.wakeups import Wakeups, cancel_key
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.v1 import worker_control_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]
MAX_WAIT_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 30.0
DEADLINE_MARGIN = 1.0
"""The answer leaves this long before the caller's deadline, so it arrives."""
POLL_SECONDS = 5.0
"""How often a waiter looks again without a wake-up (lost NOTIFY, listener reconnecting)."""


def _wait_of(request: pb.WaitForCancelRequest, context: Context) -> float:
    wait = seconds(request.wait) if request.HasField("wait") else DEFAULT_WAIT_SECONDS
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        raise InvalidArgument([FieldViolation("wait", "0 to 60 seconds")])
    left = context.time_remaining()
    if left is not None:
        wait = min(wait, max(0.0, left - DEADLINE_MARGIN))
    return wait


async def wait_for_cancel(
    pool: Pool, wakeups: Wakeups, request: pb.WaitForCancelRequest, context: Context
) -> pb.WaitForCancelResponse:
    fence = fence_from(request.run, request.attempt, request.lease_id)
    wait = _wait_of(request, context)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        with wakeups.waiter([cancel_key(fence.run)]) as woken:  # registered before looking
            cancel = await cancel_requested(pool, fence)
            remaining = deadline - loop.time()
            if cancel or remaining <= 0 or context.done():
                return pb.WaitForCancelResponse(cancel_requested=cancel)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, POLL_SECONDS))
