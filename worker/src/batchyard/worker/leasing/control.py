"""The push side of a running attempt: a cancel reaches the job at once.

Alongside the heartbeat (heartbeat.py), each running attempt keeps one WaitForCancel
long-poll open. The server answers it the moment the run's cancel is requested through
any replica (NOTIFY fan-out), so SIGTERM reaches the job within a fraction of a second,
whatever the renew interval or how much the job prints. RenewLease still answers
`cancel_requested` too, so a server without WaitForCancel, or a long outage, costs only
latency. Lease loss is the heartbeat's business: here it just ends the watch.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grpc
import structlog

from batchyard.worker.outcome import StopReason
from batchyard.worker.server_api import Backoff, Lease, LeaseLost, WorkerApi, status_code

_log = structlog.get_logger(__name__)

WAIT_SECONDS = 30.0
"""How long one WaitForCancel may wait before it is asked again."""
GIVE_UP = frozenset({grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED})
"""An older server, or a token without the worker role: the heartbeat carries cancels."""


class Stoppable(Protocol):
    def stop(self, reason: StopReason) -> None: ...


async def watch_cancel(api: WorkerApi, lease: Lease, execution: Stoppable) -> None:
    """Until cancelled (the attempt ended): stops the job with CANCEL once the server
    says the run's cancel was requested."""
    backoff = Backoff(initial=0.2, maximum=5.0)
    while True:
        try:
            cancel = await api.wait_for_cancel(lease, WAIT_SECONDS)
        except LeaseLost:
            return
        except grpc.aio.AioRpcError as exc:
            if status_code(exc) in GIVE_UP:
                _log.info("cancel_watch_unavailable", code=status_code(exc).name)
                return
            await asyncio.sleep(backoff.next())
            continue
        backoff.reset()
        if cancel:
            _log.info("cancel_requested", via="WaitForCancel")
            execution.stop(StopReason.CANCEL)
            return
