"""WorkerService: the long-poll lease, heartbeats, log batches, completion and release.

Every change to a run wakes its watchers and log followers (`run_key`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import structlog

from batchyard.server.api.auth import current_principal
from batchyard.server.api.cancel_wait import wait_for_cancel
from batchyard.server.api.fences import fence_from
from batchyard.server.api.job_convert import config_to_pb, duration, seconds, timestamp
from batchyard.server.api.log_append import append_logs, check_entries, store_batch
from batchyard.server.api.results import results_from_pb
from batchyard.server.api.run_convert import (
    reason_from_pb,
    status_from_pb,
    status_to_pb,
)
from batchyard.server.api.task_convert import tasks_from_pb
from batchyard.server.api.worker_presence import Presence, arrival_from
from batchyard.server.db import attempt_end, leases
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.pool import Pool
from batchyard.server.db.wakeups import Wakeups, run_key
from batchyard.server.domain.attempts import Applied, Fence, Lease, Outcome, reported_outcome
from batchyard.server.domain.errors import FieldViolation, InvalidArgument, LeaseLost
from batchyard.server.domain.job_validation import QUEUE
from batchyard.v1 import log_service_pb2, worker_control_pb2, worker_service_pb2_grpc
from batchyard.v1 import worker_service_pb2 as pb

Context = grpc.aio.ServicerContext[Any, Any]
log = structlog.get_logger(__name__)
WORKER_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
MAX_WAIT_SECONDS = 60.0
DEFAULT_WAIT_SECONDS = 30.0
# A long-poll returns this long before the caller's deadline, so its answer arrives.
LEASE_DEADLINE_MARGIN = 1.0
MAX_RUNS_PER_LEASE = 1000
MAX_QUEUES_PER_LEASE = 100


@dataclass(frozen=True)
class LeaseSettings:
    ttl_seconds: float = 30.0
    # How often a waiting long-poll looks again without a wake-up.
    poll_seconds: float = 1.0
    # The longest outage of the service leases are extended across (told to workers).
    max_outage_seconds: float = 300.0


def _check_lease_request(request: pb.LeaseRunsRequest) -> float:
    violations = []
    if not WORKER_ID.match(request.worker_id):
        violations.append(FieldViolation("worker_id", "1 to 200 printable characters, no spaces"))
    if not request.queues:
        violations.append(FieldViolation("queues", "at least one queue"))
    if len(request.queues) > MAX_QUEUES_PER_LEASE:
        violations.append(FieldViolation("queues", f"at most {MAX_QUEUES_PER_LEASE} queues"))
        raise InvalidArgument(violations)
    for i, queue in enumerate(request.queues):
        if not QUEUE.match(queue):
            violations.append(FieldViolation(f"queues[{i}]", "not a valid queue name"))
    if not 1 <= request.max_runs <= MAX_RUNS_PER_LEASE:
        violations.append(FieldViolation("max_runs", f"1 to {MAX_RUNS_PER_LEASE}"))
    wait = seconds(request.wait) if request.HasField("wait") else DEFAULT_WAIT_SECONDS
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        violations.append(FieldViolation("wait", "0 to 60 seconds"))
    if violations:
        raise InvalidArgument(violations)
    return wait


def _leased_to_pb(lease: Lease) -> pb.LeasedRun:
    return pb.LeasedRun(
        run=str(lease.run),
        attempt=lease.attempt,
        lease_id=str(lease.lease_id),
        lease_expire_time=timestamp(lease.expires),
        config=config_to_pb(lease.config, lease.secrets, reveal=True),
        payload=lease.payload,
        definition_name=lease.definition_name,
        workspace=lease.workspace,
    )


def _reported(request: pb.CompleteRunRequest) -> tuple[Outcome, int | None]:
    """The outcome and last progress a CompleteRun reports (InvalidArgument if wrong)."""
    status = status_from_pb(request.status)
    reason = reason_from_pb(request.reason)
    if status is None or reason is None:
        field = "status" if status is None else "reason"
        raise InvalidArgument([FieldViolation(field, "unknown value")])
    exit_code = request.exit_code if request.HasField("exit_code") else None
    progress = request.progress if request.HasField("progress") else None
    outcome = reported_outcome(status, reason, exit_code, request.message, progress)
    memory, cpu = _usage(request)
    return replace(outcome, peak_memory_bytes=memory, cpu_usec=cpu), progress


MAX_PEAK_MEMORY = 2**53
MAX_CPU_USEC = 10 * 366 * 86400 * 10**6


def _usage(request: pb.CompleteRunRequest) -> tuple[int | None, int | None]:
    """The accounting a CompleteRun reports (InvalidArgument if out of range)."""
    memory = request.peak_memory_bytes if request.HasField("peak_memory_bytes") else None
    cpu = request.cpu_time.ToMicroseconds() if request.HasField("cpu_time") else None
    violations = []
    if memory is not None and not 0 <= memory <= MAX_PEAK_MEMORY:
        violations.append(FieldViolation("peak_memory_bytes", "0 to 2^53"))
    if cpu is not None and not 0 <= cpu <= MAX_CPU_USEC:
        violations.append(FieldViolation("cpu_time", "0 to 10 years"))
    if violations:
        raise InvalidArgument(violations)
    return memory, cpu


class WorkerServicer(worker_service_pb2_grpc.WorkerServiceServicer):
    def __init__(
        self, pool: Pool, box: SecretBox, wakeups: Wakeups, settings: LeaseSettings
    ) -> None:
        self._pool = pool
        self._box = box
        self._wakeups = wakeups
        self._settings = settings
        self._limited = leases.LimitedQueues()
        self._presence = Presence(pool, settings.ttl_seconds)

    async def LeaseRuns(
        self, request: pb.LeaseRunsRequest, context: Context
    ) -> pb.LeaseRunsResponse:
        wait = _check_lease_request(request)
        arrival = arrival_from(request)
        queues = sorted(set(request.queues))
        workspace = current_principal().workspace_id  # a worker leases its workspace's runs
        call_at = await self._presence.arrive(workspace, arrival)
        loop = asyncio.get_running_loop()
        left = context.time_remaining()
        if left is not None:  # answer before the caller gives up: a run leased into a
            wait = min(wait, max(0.0, left - LEASE_DEADLINE_MARGIN))  # dead call idles
        deadline = loop.time() + wait
        while True:
            with self._wakeups.waiter(queues) as woken:
                if await self._presence.fenced(workspace, request.worker_id, call_at):
                    return self._leased([])  # its lease was just expired: no work for it
                found = await self._lease_for(
                    context, workspace, queues, request.max_runs, request.worker_id
                )
                remaining = deadline - loop.time()
                if found:
                    self._wakeups.poke([run_key(x.run) for x in found])
                if found or remaining <= 0 or context.done():
                    return self._leased(found)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        woken.wait(), min(remaining, self._settings.poll_seconds)
                    )

    def _leased(self, found: list[Lease]) -> pb.LeaseRunsResponse:
        ttl = self._settings.ttl_seconds
        return pb.LeaseRunsResponse(
            runs=[_leased_to_pb(x) for x in found],
            renew_interval=duration(ttl / 3),
            lease_ttl=duration(ttl),
            max_outage=duration(self._settings.max_outage_seconds),
        )

    async def _lease_for(
        self, context: Context, workspace: Any, queues: list[str], limit: int, worker_id: str
    ) -> list[Lease]:
        """Lease for a caller that is still there. Runs leased for a caller that went away
        meanwhile (the call was cancelled) are handed back at once: nobody would
        receive them, and they would wait for the lease to expire."""
        limited = await self._limited.of(self._pool, workspace, queues)
        task = asyncio.ensure_future(
            leases.lease(
                self._pool,
                self._box,
                workspace,
                queues,
                limit,
                worker_id,
                self._settings.ttl_seconds,
                limited,
            )
        )
        try:
            found = await asyncio.shield(task)  # a cancel must not hide what was leased
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # the statement's own failure: nothing leased
                await _hand_back(self._pool, await task)
            raise
        if found and context.cancelled():
            await _hand_back(self._pool, found)
            return []
        return found

    async def AppendLogs(
        self, request_iterator: AsyncIterator[pb.AppendLogsRequest], context: Context
    ) -> pb.AppendLogsResponse:
        fence, acked = await append_logs(self._pool, request_iterator)
        if fence is not None and acked:
            self._wakeups.poke([run_key(fence.run)])
        return pb.AppendLogsResponse(acked_seq=acked)

    async def RenewLease(
        self, request: pb.RenewLeaseRequest, context: Context
    ) -> pb.RenewLeaseResponse:
        fence = fence_from(request.run, request.attempt, request.lease_id)
        progress = request.progress if request.HasField("progress") else None
        if progress is not None and not 0 <= progress <= 100:
            raise InvalidArgument([FieldViolation("progress", "0 to 100")])
        tasks = tasks_from_pb(request.tasks) if request.HasField("tasks") else None
        expires, cancel = await leases.renew(
            self._pool, fence, progress, self._settings.ttl_seconds
        )
        if tasks is not None:
            await leases.set_tasks(self._pool, fence, tasks)
        if progress is not None or tasks is not None:  # watchers see progress as it comes
            self._wakeups.poke([run_key(fence.run)])
        return pb.RenewLeaseResponse(lease_expire_time=timestamp(expires), cancel_requested=cancel)

    async def CompleteRun(
        self, request: pb.CompleteRunRequest, context: Context
    ) -> pb.CompleteRunResponse:
        fence = fence_from(request.run, request.attempt, request.lease_id)
        outcome, progress = _reported(request)
        results = results_from_pb(request.results, fence.attempt)
        if request.HasField("tasks"):  # while the lease holds; a repeat finds it gone
            await leases.set_tasks(self._pool, fence, tasks_from_pb(request.tasks))
        applied = None
        if request.HasField("logs") and len(request.logs.entries):
            applied = await self._complete_with_logs(
                fence, outcome, progress, request.logs, fast=not results
            )
        if applied is None:
            applied = await attempt_end.complete(self._pool, fence, outcome, progress, results)
        self._poke_ended(fence.run, applied)
        return pb.CompleteRunResponse(
            run_status=status_to_pb(applied.status),
            next_attempt_time=timestamp(applied.next_attempt_time),
        )

    async def _complete_with_logs(
        self,
        fence: Fence,
        outcome: Outcome,
        progress: int | None,
        logs: pb.AppendLogsRequest,
        *,
        fast: bool,
    ) -> Applied | None:
        """The attempt's last entries, sent with CompleteRun: stored as AppendLogs would,
        in the same statement as a success when they continue the stored log (`fast`: no
        results to store with it). None: the outcome is still to be applied."""
        if fence_from(logs.run, logs.attempt, logs.lease_id) != fence:
            raise InvalidArgument([FieldViolation("logs.run", "logs of another attempt or lease")])
        try:
            first, last = check_entries(logs.entries)
        except InvalidArgument as exc:
            raise exc.under("logs") from None
        data = log_service_pb2.TailLogsResponse(entries=logs.entries).SerializeToString()
        applied = None
        if fast:
            applied = await attempt_end.complete_with_logs(
                self._pool, fence, outcome, progress, (first, last, data)
            )
        if applied is None:
            await self._store_final_logs(fence, logs)
        return applied

    async def _store_final_logs(self, fence: Fence, logs: pb.AppendLogsRequest) -> None:
        try:
            await store_batch(self._pool, fence, logs)
        except InvalidArgument as exc:
            raise exc.under("logs") from None
        except LeaseLost:
            pass  # CompleteRun answers: an idempotent repeat, or the lease really is gone

    async def ReleaseRun(
        self, request: pb.ReleaseRunRequest, context: Context
    ) -> pb.ReleaseRunResponse:
        fence = fence_from(request.run, request.attempt, request.lease_id)
        applied = await attempt_end.release(self._pool, fence, request.message)
        self._poke_ended(fence.run, applied)
        return pb.ReleaseRunResponse()

    async def WaitForCancel(
        self, request: worker_control_pb2.WaitForCancelRequest, context: Context
    ) -> worker_control_pb2.WaitForCancelResponse:
        """Answers when the run's cancel is requested (api/cancel_wait.py)."""
        return await wait_for_cancel(self._pool, self._wakeups, request, context)

    def _poke_ended(self, run: Any, applied: Applied) -> None:
        """Watchers look again; so do the queue's workers when the run is leasable again
        or its end makes room in a queue with a concurrency limit."""
        self._wakeups.poke_ended(run, applied.status, applied.queue)
        if applied.queue in self._limited.names:
            self._wakeups.poke([applied.queue])


async def _hand_back(pool: Pool, found: list[Lease]) -> None:
    if found:
        await leases.undo(pool, found)
        log.info("leases_handed_back", runs=len(found), why="the caller went away")
