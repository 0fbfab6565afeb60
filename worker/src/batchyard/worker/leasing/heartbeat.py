"""The heartbeat of one running attempt: RenewLease every ``renew_interval``.

Each renewal carries the latest progress the job reported, and its task summary when it
changed (values in between are coalesced away: the latest wins). The answer drives the
job: ``cancel_requested`` stops it gracefully (the run is then
completed as CANCELLED); a lost lease kills it at once. A renewal that fails for any other
reason (server unavailable, deadline) is retried sooner, and the job keeps running through
an outage of the service: the server extends leases across outages up to its
``--max-outage``. Only when no renewal has succeeded for longer than the lease TTL plus that
maximum (by then the server has expired the lease, whatever happened) does the worker
stop the job on its own (self-fencing: see worker/README.md, "Outages").
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grpc
import structlog

from batchyard.v1 import task_pb2
from batchyard.worker.outcome import StopReason
from batchyard.worker.server_api import Lease, LeaseLost, WorkerApi, status_code

_log = structlog.get_logger(__name__)

DEFAULT_RENEW_INTERVAL = 10.0
RETRY_MIN = 0.5
RETRY_MAX = 2.0
"""A failed renewal is tried again this soon (the first call after an outage renews)."""
PROGRESS_TICK = 0.5
"""How often the heartbeat looks for new progress between renewals (no call unless it moved)."""


class Renewable(Protocol):
    """What the heartbeat needs from an execution."""

    @property
    def progress(self) -> int | None: ...

    @property
    def tasks(self) -> task_pb2.TaskSummary | None: ...

    def stop(self, reason: StopReason) -> None: ...


async def keep_lease(
    api: WorkerApi, lease: Lease, execution: Renewable, interval: float
) -> StopReason | None:
    """Renews until cancelled; returns LEASE_LOST (after stopping the job) if the lease goes:
    the server says so, or no renewal succeeded for longer than the server's lease TTL plus
    its maximum outage (self-fencing)."""
    interval = interval if interval > 0 else DEFAULT_RENEW_INTERVAL
    delay = interval
    cancel_seen = False
    sent: int | None = None
    sent_tasks: task_pb2.TaskSummary | None = None
    loop = asyncio.get_running_loop()
    last_renewed = loop.time()  # the lease was just granted
    while True:
        limit = api.terms.give_up_after(interval)
        wait = min(delay, last_renewed + limit - loop.time())
        await _until_due(execution, wait, sent, sent_tasks)
        progress = execution.progress
        tasks = execution.tasks
        try:
            left = last_renewed + limit - loop.time()
            changed = tasks if tasks is not sent_tasks else None
            cancel_requested = await asyncio.wait_for(
                api.renew(lease, progress, changed), max(left, 0.01)
            )
        except LeaseLost as exc:
            _log.warning("lease_lost", call="RenewLease", detail=str(exc))
            execution.stop(StopReason.LEASE_LOST)
            return StopReason.LEASE_LOST
        except (grpc.aio.AioRpcError, TimeoutError) as exc:
            code = status_code(exc).name if isinstance(exc, grpc.aio.AioRpcError) else "TIMEOUT"
            silent = loop.time() - last_renewed
            if silent >= limit:
                _log.error(
                    "lease_given_up", code=code, unrenewed_seconds=round(silent, 1), limit=limit
                )
                execution.stop(StopReason.LEASE_LOST)
                return StopReason.LEASE_LOST
            delay = max(RETRY_MIN, min(interval / 3, RETRY_MAX))
            _log.warning("lease_renew_failed", code=code, retry_in=delay)
            continue
        last_renewed = loop.time()
        delay = interval
        sent, sent_tasks = progress, tasks
        if cancel_requested and not cancel_seen:
            cancel_seen = True
            _log.info("cancel_requested")
            execution.stop(StopReason.CANCEL)


async def _until_due(
    execution: Renewable, delay: float, sent: int | None, sent_tasks: object
) -> None:
    """Sleeps until the next renewal is due, or sooner once the job reported progress the
    server has not seen (watchers then see it within ~PROGRESS_TICK, not a whole interval)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + delay
    while (left := due - loop.time()) > 0:
        await asyncio.sleep(min(PROGRESS_TICK, left))
        progress = execution.progress
        if progress is not None and progress != sent:
            return
        tasks = execution.tasks
        if tasks is not None and tasks is not sent_tasks:
            return
