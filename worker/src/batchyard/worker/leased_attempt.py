"""One leased attempt, from lease to report: execution, heartbeat, CompleteRun/ReleaseRun.

This is the per-attempt boundary: an unexpected error here is logged and the run handed
back (ReleaseRun) so another worker can take it, and the worker carries on.
"""

from __future__ import annotations

import asyncio

import grpc
import structlog

from batchyard.v1 import run_pb2, worker_service_pb2
from batchyard.worker.execution import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.heartbeat import keep_lease
from batchyard.worker.outcome import Outcome, StopReason
from batchyard.worker.reaper_client import Reaper
from batchyard.worker.server_api import Lease, LeaseLost, WorkerApi, status_code

_log = structlog.get_logger(__name__)


class LeasedAttempt:
    """Runs one leased attempt and reports it."""

    def __init__(
        self,
        leased: worker_service_pb2.LeasedRun,
        *,
        renew_interval: float,
        api: WorkerApi,
        options: ExecutionOptions,
        reaper: Reaper | None,
    ) -> None:
        self.lease = Lease(leased.run, leased.attempt, leased.lease_id)
        spec = AttemptSpec(leased.run, leased.attempt, leased.config, leased.payload)
        self._execution = Execution(spec, options, reaper=reaper)
        self._api = api
        self._renew_interval = renew_interval

    def stop(self, reason: StopReason) -> None:
        """Stops the job (SHUTDOWN: it is then released, not completed)."""
        self._execution.stop(reason)

    async def run(self) -> None:
        structlog.contextvars.bind_contextvars(run=self.lease.run, attempt=self.lease.attempt)
        try:
            await self._run()
        except Exception:  # the per-attempt boundary
            _log.exception("attempt_crashed")
            await self._release("the worker failed to run the attempt")

    async def _run(self) -> None:
        async with self._execution as execution:
            heartbeat = asyncio.create_task(
                keep_lease(self._api, self.lease, execution, self._renew_interval),
                name=f"heartbeat-{self.lease.run}-{self.lease.attempt}",
            )
            try:
                outcome = await execution.run()
            finally:
                heartbeat.cancel()
                await asyncio.wait({heartbeat})
            lease_lost = _heartbeat_result(heartbeat, execution) is StopReason.LEASE_LOST
            _log.info(
                "attempt_finished",
                status=run_pb2.RunStatus.Name(outcome.status),
                reason=run_pb2.RunReason.Name(outcome.reason),
                exit_code=outcome.exit_code,
                message=outcome.message,
            )
            if lease_lost or outcome.stopped is StopReason.LEASE_LOST:
                return
            if outcome.stopped is StopReason.SHUTDOWN:
                await self._release("the worker is shutting down")
                return
            # Results upload (execution.paths.output) will come here, before completing.
            await self._complete(outcome)

    async def _complete(self, outcome: Outcome) -> None:
        try:
            run_status = await self._api.complete(self.lease, outcome)
        except LeaseLost as exc:
            _log.warning("lease_lost", call="CompleteRun", detail=str(exc))
        except grpc.aio.AioRpcError as exc:
            _log.error("run_complete_failed", code=status_code(exc).name, detail=exc.details())
        else:
            _log.info("run_completed", run_status=run_pb2.RunStatus.Name(run_status))

    async def _release(self, message: str) -> None:
        try:
            await self._api.release(self.lease, message)
        except LeaseLost as exc:
            _log.warning("lease_lost", call="ReleaseRun", detail=str(exc))
        except grpc.aio.AioRpcError as exc:
            _log.error("run_release_failed", code=status_code(exc).name, detail=exc.details())
        else:
            _log.info("run_released", message=message)


def _heartbeat_result(heartbeat: asyncio.Task[StopReason | None], execution: Execution) -> object:
    """The heartbeat's verdict; a crashed heartbeat is logged (the lease then expires)."""
    if heartbeat.cancelled():
        return None
    exc = heartbeat.exception()
    if exc is not None:
        _log.error("heartbeat_crashed", error=repr(exc))
        execution.stop(StopReason.LEASE_LOST)
        return None
    return heartbeat.result()
