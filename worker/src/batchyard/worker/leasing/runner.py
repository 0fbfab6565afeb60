"""The runner: leases runs for its free slots, runs them, shuts down gracefully.

* Leasing: ``LeaseRuns(max_runs=<free slots>)`` long-polls only while a slot is free and is
  called again as soon as it returns.
* Shutdown (:meth:`Runner.shutdown`, idempotent; SIGTERM/SIGINT): stop leasing; running
  attempts get ``grace`` seconds to finish, still heartbeating; then the rest are stopped
  (SIGTERM, ``kill_grace``, SIGKILL) and released with ReleaseRun so another worker leases
  them at once. :meth:`Runner.hurry` (a second signal) cuts the grace short.
* Monitor: the lease loop and the reaper watch must run until shutdown. If one ends early —
  an exception, or the reaper sidecar died — the runner drains at once and :meth:`run`
  raises :class:`WorkerCrashed`, so the process exits non-zero.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from batchyard.config import Flag, Kind, Values, comma_list, duration, integer, text
from batchyard.v1 import worker_service_pb2
from batchyard.worker.execution.options import ExecutionOptions
from batchyard.worker.leasing.attempt import LeasedAttempt
from batchyard.worker.leasing.heartbeat import DEFAULT_RENEW_INTERVAL
from batchyard.worker.outcome import StopReason
from batchyard.worker.reaper.client import Reaper
from batchyard.worker.server_api import Backoff, WorkerApi, status_code
from batchyard.worker.shipping.options import ShippingOptions

_log = structlog.get_logger(__name__)

RELEASE_BUDGET = 15.0
"""Seconds, after stopped jobs are dead, for ReleaseRun calls to finish at shutdown."""


EMPTY_POLL_MINIMUM = 0.5
"""Seconds between two LeaseRuns calls when the first came back empty."""

LEASE_COALESCE = 0.005
"""Under load slots free up one by one; wait this long for more before asking, so one
LeaseRuns call fetches several runs instead of one round trip per run."""


DEFAULT_SLOTS = 4
MAX_SLOTS = 1000
DEFAULT_GRACE = 30.0
_QUEUE_LIST = comma_list(text())


def _queues(raw: str) -> tuple[str, ...]:
    """Comma-separated names, trimmed, each once."""
    return tuple(dict.fromkeys(queue.strip() for queue in _QUEUE_LIST.parse(raw)))


SLOTS = Flag("slots", integer(1, MAX_SLOTS), "attempts run at once", default=DEFAULT_SLOTS)
QUEUES = Flag(
    "queues", Kind(_queues, ",".join, "QUEUE,..."), "queues to serve", default=("default",)
)
GRACE = Flag(
    "grace",
    duration(0, 7 * 24 * 3600.0),
    "how long running attempts may go on after a shutdown signal",
    default=DEFAULT_GRACE,
)
FLAGS = (SLOTS, QUEUES, GRACE)


@dataclass(frozen=True)
class RunnerOptions:
    """How many attempts run at once, from which queues, and the shutdown grace."""

    slots: int = DEFAULT_SLOTS
    queues: tuple[str, ...] = ("default",)
    grace: float = DEFAULT_GRACE
    """Seconds running attempts get to finish after a shutdown signal."""

    @classmethod
    def from_values(cls, values: Values) -> RunnerOptions:
        return cls(slots=values[SLOTS], queues=values[QUEUES], grace=values[GRACE])


class WorkerCrashed(Exception):
    """A background loop of the worker ended unexpectedly."""


class Runner:
    """Leases and runs attempts until shut down."""

    def __init__(
        self,
        options: RunnerOptions,
        api: WorkerApi,
        reaper: Reaper | None,
        *,
        execution: ExecutionOptions,
        shipping: ShippingOptions,
    ) -> None:
        self._options = options
        self._execution = execution
        self._shipping = shipping
        self._api = api
        self._reaper = reaper
        self._attempts: dict[asyncio.Task[None], LeasedAttempt] = {}
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def shutdown(self) -> None:
        """Stops leasing and lets running attempts finish within the grace (idempotent)."""
        if not self._stopping.is_set():
            _log.info("worker_stopping", running=len(self._attempts), grace=self._options.grace)
            self._stopping.set()

    def hurry(self) -> None:
        """Shuts down without waiting for the rest of the grace period."""
        self.shutdown()
        self._hurry.set()

    async def run(self) -> None:
        """Runs until shut down; raises WorkerCrashed if a background loop died."""
        users = self._execution.attempt_directories.users
        _log.info(
            "worker_started",
            slots=self._options.slots,
            queues=list(self._options.queues),
            job_users=None if users is None else users.describe(),
        )
        loops: list[asyncio.Task[Any]] = [
            asyncio.create_task(self._lease_loop(), name="lease_loop")
        ]
        if self._reaper is not None:
            loops.append(asyncio.create_task(self._reaper.wait_exit(), name="reaper_watch"))
        stop = asyncio.create_task(self._stopping.wait(), name="stop_signal")
        try:
            done, _ = await asyncio.wait([*loops, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*loops, stop):
                task.cancel()
        crashed = [task for task in loops if task in done]
        if crashed:
            self.hurry()
        await asyncio.wait(loops)
        await self._drain()
        if self._execution.artifacts is not None:
            await self._execution.artifacts.aclose()
        _log.info("worker_stopped")
        if crashed:
            raise WorkerCrashed(_describe_crash(crashed[0]))

    async def _lease_loop(self) -> None:
        backoff = Backoff(initial=0.5, maximum=30.0)
        loop = asyncio.get_running_loop()
        while True:
            free = await self._free_slots()
            started = loop.time()
            try:
                response = await self._api.lease(free)
            except grpc.aio.AioRpcError as exc:
                delay = backoff.next()
                _log.warning("lease_request_failed", code=status_code(exc).name, retry_in=delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if not response.runs:
                # An early empty answer (the server did not long-poll): never spin.
                await asyncio.sleep(max(0.0, started + EMPTY_POLL_MINIMUM - loop.time()))
                continue
            interval = response.renew_interval.ToTimedelta().total_seconds()
            for leased in response.runs:
                self._start(leased, interval if interval > 0 else DEFAULT_RENEW_INTERVAL)

    async def _free_slots(self) -> int:
        slots = self._options.slots
        if len(self._attempts) >= slots:
            while len(self._attempts) >= slots:
                self._slot_freed.clear()
                await self._slot_freed.wait()
            if slots - len(self._attempts) < slots // 2:
                await asyncio.sleep(LEASE_COALESCE)
        return slots - len(self._attempts)

    def _start(self, leased: worker_service_pb2.LeasedRun, renew_interval: float) -> None:
        attempt = LeasedAttempt(
            leased,
            renew_interval=renew_interval,
            api=self._api,
            options=self._execution,
            reaper=self._reaper,
            shipping=self._shipping,
        )
        task = asyncio.create_task(attempt.run(), name=f"attempt-{leased.run}-{leased.attempt}")
        self._attempts[task] = attempt
        task.add_done_callback(self._attempt_done)
        _log.info("run_leased", run=leased.run, attempt=leased.attempt)

    def _attempt_done(self, task: asyncio.Task[None]) -> None:
        self._attempts.pop(task, None)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            _log.error("attempt_task_failed", task=task.get_name(), error=repr(task.exception()))

    async def _drain(self) -> None:
        """Grace for running attempts, then stop and release the rest."""
        if self._attempts and not self._hurry.is_set():
            _log.info("attempts_finishing", running=len(self._attempts))
            await self._wait_attempts(self._options.grace, interruptible=True)
        if self._attempts:
            _log.info("attempts_stopping", running=len(self._attempts))
            for attempt in self._attempts.values():
                attempt.stop(StopReason.SHUTDOWN)
            await self._wait_attempts(self._execution.kill_grace + RELEASE_BUDGET)
        if self._attempts:
            _log.warning("attempts_abandoned", running=len(self._attempts))
            tasks = list(self._attempts)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)

    async def _wait_attempts(self, seconds: float, *, interruptible: bool = False) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        hurry = asyncio.create_task(self._hurry.wait())
        try:
            while self._attempts and (remaining := deadline - loop.time()) > 0:
                waiting = [*self._attempts, hurry] if interruptible else list(self._attempts)
                await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                if interruptible and hurry.done():
                    return
        finally:
            hurry.cancel()


def _describe_crash(task: asyncio.Task[Any]) -> str:
    if task.cancelled():
        return f"{task.get_name()} was cancelled"
    exc = task.exception()
    if exc is not None:
        _log.error("background_task_failed", task=task.get_name(), exc_info=exc)
        return f"{task.get_name()} failed: {exc!r}"
    return f"{task.get_name()} ended unexpectedly (returned {task.result()!r})"
