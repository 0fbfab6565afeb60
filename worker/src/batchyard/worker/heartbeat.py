"""The heartbeat of one running attempt: RenewLease every ``renew_interval``.

Each renewal carries the latest progress the job reported (values in between are coalesced
away). The answer drives the job: ``cancel_requested`` stops it gracefully (the run is then
completed as CANCELLED); a lost lease kills it at once. A renewal that fails for any other
reason (server unavailable, deadline) is retried sooner, and the job keeps running until the
server actually reports the lease lost.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grpc
import structlog

from batchyard.worker.outcome import StopReason
from batchyard.worker.server_api import Lease, LeaseLost, WorkerApi, status_code

_log = structlog.get_logger(__name__)

DEFAULT_RENEW_INTERVAL = 10.0


class Renewable(Protocol):
    """What the heartbeat needs from an execution."""

    @property
    def progress(self) -> int | None: ...

    def stop(self, reason: StopReason) -> None: ...


async def keep_lease(
    api: WorkerApi, lease: Lease, execution: Renewable, interval: float
) -> StopReason | None:
    """Renews until cancelled; returns LEASE_LOST (after stopping the job) if the lease goes."""
    interval = interval if interval > 0 else DEFAULT_RENEW_INTERVAL
    delay = interval
    cancel_seen = False
    while True:
        await asyncio.sleep(delay)
        try:
            cancel_requested = await api.renew(lease, execution.progress)
        except LeaseLost as exc:
            _log.warning("lease_lost", call="RenewLease", detail=str(exc))
            execution.stop(StopReason.LEASE_LOST)
            return StopReason.LEASE_LOST
        except grpc.aio.AioRpcError as exc:
            delay = min(interval, max(1.0, interval / 3))
            _log.warning("lease_renew_failed", code=status_code(exc).name, retry_in=delay)
            continue
        delay = interval
        if cancel_requested and not cancel_seen:
            cancel_seen = True
            _log.info("cancel_requested")
            execution.stop(StopReason.CANCEL)
