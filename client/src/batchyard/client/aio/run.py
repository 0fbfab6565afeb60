"""`AsyncRun`: the asyncio counterpart of `Run` — the same view of the run's last state
(`batchyard.client.core.views.RunView`), the calls awaited.

run = await client.runs.submit("nightly-etl")
await run.wait()
async for entry in run.follow():
    print(entry.message)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TextIO

from batchyard.client.aio.results import AsyncRunResults
from batchyard.client.aio.service import AsyncRunService
from batchyard.client.aio.streams import AsyncLogFollower
from batchyard.client.core.requests import Level, Position, Stream
from batchyard.client.core.streams import FIRST_RETRY_SECONDS, RECONNECT_TIMEOUT
from batchyard.client.core.views import LOG_TAIL_LINES, RunView, WaitReport, tail_of
from batchyard.client.describe import Status
from batchyard.client.display import ItemList
from batchyard.client.errors import WaitTimeoutError
from batchyard.v1 import log_pb2, run_pb2


class AsyncRun(RunView[AsyncLogFollower]):
    """A handle on one run for the asyncio client (what `await client.runs.submit(...)`
    and `await client.run(run_id)` return): `Run`'s attributes and methods, the calls
    awaited; `follow()` and `watch()` are async iterators."""

    def __init__(
        self, service: AsyncRunService, state: run_pb2.Run, *, deduplicated: bool = False
    ) -> None:
        super().__init__(service.logs, state, deduplicated=deduplicated)
        self._service = service

    async def status(self) -> Status:
        """Its status now (asks the server)."""
        return Status.of((await self.refresh()).state.status)

    async def children(self) -> list[AsyncRun]:
        """The children of this array run, by index (empty for other runs)."""
        found = self._service.iter(parent=self.id, page_size=1000)
        kids = [AsyncRun(self._service, state) async for state in found]
        return sorted(kids, key=lambda r: r.state.array_index)

    async def refresh(self) -> AsyncRun:
        """Read its state again; returns this handle."""
        self._state = await self._service.get(self.id)
        return self

    async def watch(
        self, *, reconnect_timeout: float = RECONNECT_TIMEOUT
    ) -> AsyncIterator[run_pb2.Run]:
        """Each new state as it changes until the run has ended, resuming after a
        broken connection (`async for state in run.watch()`); updates `state`."""
        async for state in self._service.watch(self.id, reconnect_timeout=reconnect_timeout):
            self._state = state
            yield state

    async def wait(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (the surface of Run.wait)
        *,
        show_progress: bool = True,
        raise_on_failure: bool = True,
        log_lines: int = LOG_TAIL_LINES,
        out: TextIO | None = None,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        on_state: Callable[[run_pb2.Run], None] | None = None,
    ) -> AsyncRun:
        """Wait until the run has ended, as `Run.wait` does (progress lines, RunFailedError
        or RunCancelledError with the log tail, WaitTimeoutError after `timeout`,
        `on_state` called with every state seen)."""
        report = WaitReport(self.id, show_progress=show_progress, out=out, on_state=on_state)
        try:
            async with asyncio.timeout(timeout):
                await self._follow_states(report, reconnect_timeout)
        except TimeoutError:
            raise report.timed_out(WaitTimeoutError(self._state, timeout or 0.0)) from None
        status = self._state.status
        if status == run_pb2.RUN_STATUS_SUCCEEDED or not raise_on_failure:
            return self
        tail = await self.failure_tail(log_lines) if status == run_pb2.RUN_STATUS_FAILED else []
        raise report.failed(self._state, tail)

    async def _follow_states(self, report: WaitReport, reconnect_timeout: float) -> None:
        await self.refresh()
        report.update(self._state)
        while not self.finished:
            watcher = self._service.watch(
                self.id, self._state.revision, reconnect_timeout=reconnect_timeout
            )
            async for state in watcher:
                self._state = state
                report.update(state)
            if not self.finished:  # the stream ended early (a server off contract)
                await asyncio.sleep(FIRST_RETRY_SECONDS)

    async def cancel(self, reason: str = "") -> AsyncRun:
        """Cancel it (see `Run.cancel`); returns this handle."""
        self._state = await self._service.cancel(self.id, reason)
        return self

    async def delete(self) -> None:
        """Delete the finished run with its logs and results."""
        await self._service.delete(self.id)

    async def logs(
        self,
        *,
        level: Level | None = None,
        attempt: int = 0,
        streams: Iterable[Stream] = (),
        after: Position | None = None,
    ) -> ItemList[log_pb2.LogEntry]:
        """The entries of its log stored now (see `Run.logs`)."""
        found = self._service.logs.iter(
            self.id, after=after, attempt=attempt, min_level=level, streams=streams
        )
        return ItemList([entry async for entry in found])

    async def log_tail(
        self, lines: int = LOG_TAIL_LINES, *, level: Level | None = None, attempt: int = 0
    ) -> ItemList[log_pb2.LogEntry]:
        """The last `lines` entries stored now (at `level` and above; of `attempt`)."""
        found = self._service.logs.iter(self.id, attempt=attempt, min_level=level)
        return ItemList(tail_of([entry async for entry in found], lines))

    async def failure_tail(self, lines: int = LOG_TAIL_LINES) -> list[log_pb2.LogEntry]:
        """The last lines of the last attempt's log at warning and above, else any."""
        attempt = self._last_attempt()
        tail = await self.log_tail(lines, level="warning", attempt=attempt)
        return tail or await self.log_tail(lines, attempt=attempt)

    async def results(self) -> AsyncRunResults:
        """Its result files (listed now), with async `download_files(dir)`."""
        return await self._service.results(self.id)
