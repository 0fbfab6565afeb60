"""Watching a started job to its end: the leader's exit, a stop request or the timeout;
SIGTERM, ``kill_grace``, SIGKILL; the whole group killed whatever happens; the outcome."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, replace
from typing import Any

from batchyard.worker import outcome as outcomes
from batchyard.worker.execution.limits import ResourceLimits, cpu_limit_reached
from batchyard.worker.execution.messages import stop_message
from batchyard.worker.execution.process import JobProcess
from batchyard.worker.execution.stopping import Stops
from batchyard.worker.outcome import Outcome, StopReason
from batchyard.worker.output.collector import Level, OutputCollector
from batchyard.worker.reaper.client import Reaper


@dataclass
class Supervision:
    """One started job's supervision (``run`` once)."""

    process: JobProcess
    collector: OutputCollector
    stops: Stops
    timeout: float
    kill_grace: float
    drain_timeout: float
    limits: ResourceLimits
    reaper: Reaper | None = None
    _group_released: bool = False

    async def run(self) -> Outcome:
        process, collector = self.process, self.collector  # the reaper knows the group
        try:
            stopped = await self._wait()
            process.signal_group(signal.SIGKILL)  # grandchildren die with the attempt
            cpu = process.cpu_seconds() if self.limits.cpu_seconds is not None else 0.0
            returncode = process.reap()
            self._release_group()
            if not await process.drain(within=self.drain_timeout):
                collector.system(
                    "output pipes were still open after the job's process group was killed "
                    "(a process left the job's session?); closed them",
                    Level.WARNING,
                )
        finally:
            process.close()
            self._release_group()
        usage = process.usage()
        if stopped is not None:
            outcome = outcomes.stopped(stopped, timeout=self.timeout, progress=collector.progress)
            return replace(outcome, usage=usage)
        outcome = replace(outcomes.exited(returncode, collector.progress), usage=usage)
        if cpu_limit_reached(returncode, self.limits, cpu):
            message = f"CPU time limit of {self.limits.cpu_seconds}s reached"
            collector.system(message, Level.ERROR)
            outcome = replace(outcome, message=f"{outcome.message}: {message}")
        return outcome

    async def _wait(self) -> StopReason | None:
        """Waits for the leader's exit, a stop request or the timeout: None if it exited."""
        process = self.process
        await _until(process.exited, self.stops.requested, self.timeout)
        if process.exited.done():
            return None
        reason = self.stops.reason if self.stops.reason is not None else StopReason.TIMEOUT
        if reason is StopReason.TIMEOUT:
            self.collector.system(
                f"timeout of {outcomes.format_seconds(self.timeout)} reached", Level.ERROR
            )
        else:
            self.collector.system(f"stopping the job: {stop_message(reason)}", Level.WARNING)
        await self._terminate(reason)
        return reason

    async def _terminate(self, reason: StopReason) -> None:
        """SIGTERM, up to ``kill_grace`` for the leader to exit, then SIGKILL."""
        process, kill_now_set = self.process, self.stops.kill_now
        if reason is not StopReason.LEASE_LOST and not kill_now_set.is_set():
            if process.signal_group(signal.SIGTERM):
                self.collector.system(
                    f"sent SIGTERM to the job's process group; SIGKILL follows in "
                    f"{outcomes.format_seconds(self.kill_grace)}"
                )
            await _until(process.exited, kill_now_set, self.kill_grace)
        if not process.exited.done():
            process.signal_group(signal.SIGKILL)
            self.collector.system("sent SIGKILL to the job's process group", Level.WARNING)
            await asyncio.shield(process.exited)

    def _release_group(self) -> None:
        if self.reaper is not None and not self._group_released:
            self._group_released = True
            self.reaper.release_group(self.process.pgid)


async def _until(done: asyncio.Future[Any], event: asyncio.Event, seconds: float) -> None:
    """Waits until ``done`` is done, ``event`` is set, or ``seconds`` have passed."""
    event_set = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait((done, event_set), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        event_set.cancel()
