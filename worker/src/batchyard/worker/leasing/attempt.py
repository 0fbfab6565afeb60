"""One leased attempt, from lease to report: execution, heartbeat, logs, CompleteRun/ReleaseRun.

The order is what makes a finished run's log complete: the job runs (its log shipped live
by a :class:`~batchyard.worker.shipping.shipper.LogShipper`) and its result files are stored
(inside :meth:`Execution.run`, so the entries about them are part of the log, and the
heartbeat keeps the lease meanwhile); when it has ended, every record is
flushed — until the server acknowledged the last seq — and only then is the run completed
(or released, at shutdown). When what is left fits one message and nothing is on its way,
it goes with CompleteRun itself, which stores it before applying the outcome: a short
attempt then costs one call less. While the server is unreachable the flush keeps retrying, and
the heartbeat keeps the lease meanwhile; once the lease is lost the logs are given up
quietly (the run is someone else's now). At shutdown the flush gets
``SHUTDOWN_FLUSH_BUDGET`` seconds, so ReleaseRun still happens in time.

This is the per-attempt boundary: an unexpected error here is logged and the run handed
back (ReleaseRun) so another worker can take it, and the worker carries on.
"""

from __future__ import annotations

import asyncio

import grpc
import structlog

from batchyard.v1 import run_pb2, task_pb2, worker_service_pb2
from batchyard.worker.execution.attempt import AttemptSpec, Execution, ExecutionOptions
from batchyard.worker.leasing.control import watch_cancel
from batchyard.worker.leasing.heartbeat import keep_lease
from batchyard.worker.outcome import Outcome, StopReason
from batchyard.worker.reaper.client import Reaper
from batchyard.worker.server_api import Lease, LeaseLost, WorkerApi, status_code
from batchyard.worker.shipping.shipper import LogShipper, ShippingOptions

_log = structlog.get_logger(__name__)

SHUTDOWN_FLUSH_BUDGET = 5.0
"""Seconds the log flush may take at shutdown before the run is released anyway."""
ORPHAN_FLUSH_BUDGET = 10.0
"""Seconds the log flush may take once the heartbeat is gone (it crashed)."""


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
        shipping: ShippingOptions | None = None,
    ) -> None:
        self.lease = Lease(leased.run, leased.attempt, leased.lease_id)
        spec = AttemptSpec(leased.run, leased.attempt, leased.config, leased.payload)
        self._shipper = LogShipper(
            self.lease, api.append_logs, shipping, on_lease_lost=self._logs_lost_lease
        )
        self._execution = Execution(spec, options, reaper=reaper, sink=self._shipper)
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
        shipper = self._shipper
        async with self._execution as execution:
            heartbeat = asyncio.create_task(
                keep_lease(self._api, self.lease, execution, self._renew_interval),
                name=f"heartbeat-{self.lease.run}-{self.lease.attempt}",
            )
            cancel_watch = asyncio.create_task(watch_cancel(self._api, self.lease, execution))
            shipper.start()
            try:
                outcome = await execution.run()
                final_logs = None
                if outcome.stopped not in (
                    StopReason.SHUTDOWN,
                    StopReason.LEASE_LOST,
                ) and not _lost(heartbeat):
                    final_logs = shipper.take_final()  # they go with CompleteRun
                if final_logs is None:
                    logs_shipped = await self._flush_logs(outcome, heartbeat)
                else:
                    logs_shipped = True
            finally:
                heartbeat.cancel()
                cancel_watch.cancel()
                await asyncio.wait({heartbeat, cancel_watch})
                await shipper.aclose()
            lease_lost = (
                _heartbeat_result(heartbeat, execution) is StopReason.LEASE_LOST
                or shipper.lease_lost
            )
            _log.info(
                "attempt_finished",
                status=run_pb2.RunStatus.Name(outcome.status),
                reason=run_pb2.RunReason.Name(outcome.reason),
                exit_code=outcome.exit_code,
                message=outcome.message,
                results=len(outcome.results),
                log_entries=shipper.last_seq,
                logs_shipped=logs_shipped,
            )
            if lease_lost or outcome.stopped is StopReason.LEASE_LOST:
                return
            if outcome.stopped is StopReason.SHUTDOWN:
                await self._release("the worker is shutting down")
                return
            await self._complete(outcome, final_logs or b"", execution.tasks)

    async def _flush_logs(
        self, outcome: Outcome, heartbeat: asyncio.Task[StopReason | None]
    ) -> bool:
        """Waits until the server acknowledged every record: True; False when the logs were
        given up (lease lost, shutdown budget spent, shipping stopped)."""
        shipper = self._shipper
        if outcome.stopped is StopReason.LEASE_LOST or _lost(heartbeat):
            shipper.abandon("lease lost")
            return False
        budget = SHUTDOWN_FLUSH_BUDGET if outcome.stopped is StopReason.SHUTDOWN else None
        shipped = asyncio.ensure_future(shipper.wait_shipped())
        try:
            done, _ = await asyncio.wait(
                {shipped, heartbeat}, timeout=budget, return_when=asyncio.FIRST_COMPLETED
            )
            if shipped not in done and heartbeat in done and not _lost(heartbeat):
                # The heartbeat crashed (logged later): the lease may still hold a while.
                await asyncio.wait({shipped}, timeout=ORPHAN_FLUSH_BUDGET)
            if shipped.done():
                return shipped.result()
            shipper.abandon("lease lost" if _lost(heartbeat) else "flush budget spent")
            _log.warning(
                "logs_not_shipped",
                why="lease lost" if _lost(heartbeat) else "out of time",
                acked_seq=shipper.acked_seq,
                last_seq=shipper.last_seq,
            )
            return False
        finally:
            shipped.cancel()

    def _logs_lost_lease(self) -> None:
        """AppendLogs was refused: the lease is gone, the job must die now."""
        self._execution.stop(StopReason.LEASE_LOST)

    async def _complete(
        self, outcome: Outcome, logs: bytes, tasks: task_pb2.TaskSummary | None = None
    ) -> None:
        """CompleteRun, carrying the log's last entries when the shipper handed them over
        (a serialized AppendLogsRequest; b"" when everything is stored already)."""
        try:
            run_status = await self._api.complete(self.lease, outcome, logs, tasks)
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


def _lost(heartbeat: asyncio.Task[StopReason | None]) -> bool:
    """Whether the heartbeat ended because the lease is lost."""
    return (
        heartbeat.done()
        and not heartbeat.cancelled()
        and heartbeat.exception() is None
        and heartbeat.result() is StopReason.LEASE_LOST
    )


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
