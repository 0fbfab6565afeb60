"""`AsyncRun`: the asyncio counterpart of `Run` — the same methods, awaited.

run = await client.runs.submit("nightly-etl")
await run.wait()
async for entry in run.follow():
    print(entry.message)
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TextIO, TypeVar

from batchyard.client.aio_results import AsyncRunResults
from batchyard.client.aio_streams import AsyncLogFollower, AsyncRunWatcher
from batchyard.client.describe import Reason, Status, definition_ref, state_text
from batchyard.client.display import ItemList, run_html
from batchyard.client.logs import Level, Position, Stream, log_level, log_position, log_stream
from batchyard.client.paging import apaged
from batchyard.client.results import MAX_PAGE_SIZE as MAX_RESULTS_PAGE
from batchyard.client.run import LOG_TAIL_LINES, ProgressPrinter, run_error, tail_of
from batchyard.client.runs import WaitTimeoutError
from batchyard.client.streams import FIRST_RETRY_SECONDS, RECONNECT_TIMEOUT
from batchyard.v1 import log_pb2, log_service_pb2_grpc, run_pb2, run_service_pb2_grpc
from batchyard.v1 import log_service_pb2 as lpb
from batchyard.v1 import run_service_pb2 as rpb

T = TypeVar("T")
Caller = Callable[..., Awaitable[Any]]
"""`call(method, request, idempotent=...)`: one unary call, mapped errors, retries."""


class AsyncRunService:
    """The RunService and LogService calls an `AsyncRun` makes (shared by the handles of
    one client)."""

    def __init__(
        self,
        runs: run_service_pb2_grpc.RunServiceAsyncStub,
        logs: log_service_pb2_grpc.LogServiceAsyncStub,
        call: Caller,
        timeout: float,
    ) -> None:
        self.runs = runs
        self.logs = logs
        self.call = call
        self.timeout = timeout

    async def get(self, run_id: str) -> run_pb2.Run:
        response = await self.call(self.runs.GetRun, rpb.GetRunRequest(run=run_id), idempotent=True)
        state: run_pb2.Run = response.run
        return state

    async def log_entries(
        self,
        run_id: str,
        *,
        after: Position | None = None,
        attempt: int = 0,
        level: Level | None = None,
        streams: Iterable[Stream] = (),
    ) -> AsyncIterator[log_pb2.LogEntry]:
        """Every entry stored now after `after`, following page tokens."""
        request = lpb.GetLogsRequest(
            run=run_id,
            attempt=attempt,
            after=log_position(after),
            min_level=log_level(level),
            streams=[log_stream(s) for s in streams],
        )
        while True:
            page = await self.call(self.logs.GetLogs, request, idempotent=True)
            for entry in page.entries:
                yield entry
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token


class AsyncRun:
    """A handle on one run for the asyncio client (what `await client.runs.submit(...)`
    and `await client.run(run_id)` return): `Run`'s attributes and methods, the calls
    awaited; `follow()` and `watch()` are async iterators."""

    def __init__(
        self, service: AsyncRunService, state: run_pb2.Run, *, deduplicated: bool = False
    ) -> None:
        self._service = service
        self._state = state
        self.deduplicated = deduplicated
        """Whether `submit` found its request id used before (this is that run)."""

    @property
    def id(self) -> str:
        """The run's uuid."""
        return self._state.uuid

    @property
    def state(self) -> run_pb2.Run:
        """The last state seen (a `batchyard.v1.Run` message)."""
        return self._state

    @property
    def definition(self) -> str:
        """'name@version' of the definition it pins, or '(ad hoc)'."""
        return definition_ref(self._state)

    @property
    def progress(self) -> int:
        """The progress the job last reported, 0-100 (last state seen)."""
        return self._state.progress

    @property
    def reason(self) -> Reason:
        """Why it is in its status (last state seen)."""
        return Reason.of(self._state.reason)

    @property
    def message(self) -> str:
        """What the server said about its last change."""
        return self._state.message

    @property
    def attempts(self) -> list[run_pb2.Attempt]:
        """Its attempts, oldest first (last state seen)."""
        return list(self._state.attempts)

    @property
    def finished(self) -> bool:
        """Whether the last state seen is SUCCEEDED, FAILED or CANCELLED."""
        return Status.of(self._state.status).finished

    async def status(self) -> Status:
        """Its status now (asks the server)."""
        return Status.of((await self.refresh()).state.status)

    async def refresh(self) -> AsyncRun:
        """Read its state again; returns this handle."""
        self._state = await self._service.get(self.id)
        return self

    async def watch(
        self, *, reconnect_timeout: float = RECONNECT_TIMEOUT
    ) -> AsyncIterator[run_pb2.Run]:
        """Each new state as it changes until the run has ended, resuming after a
        broken connection (`async for state in run.watch()`); updates `state`."""
        watcher = AsyncRunWatcher(self._service.runs, self.id, reconnect_timeout=reconnect_timeout)
        async for state in watcher:
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
    ) -> AsyncRun:
        """Wait until the run has ended, as `Run.wait` does (progress lines, RunFailedError
        or RunCancelledError with the log tail, WaitTimeoutError after `timeout`)."""
        printer = ProgressPrinter(out or sys.stdout, self.id) if show_progress else None
        try:
            async with asyncio.timeout(timeout):
                await self._follow_states(printer, reconnect_timeout)
        except TimeoutError:
            error = WaitTimeoutError(self._state, timeout or 0.0)
            if printer is not None:
                printer.timed_out(error)
            raise error from None
        status = self._state.status
        if status == run_pb2.RUN_STATUS_SUCCEEDED or not raise_on_failure:
            return self
        tail = await self.failure_tail(log_lines) if status == run_pb2.RUN_STATUS_FAILED else []
        failure = run_error(self._state, tail)
        if printer is not None:
            printer.report(failure)
        raise failure

    async def _follow_states(
        self, printer: ProgressPrinter | None, reconnect_timeout: float
    ) -> None:
        await self.refresh()
        if printer is not None:
            printer.update(self._state)
        while not self.finished:
            watcher = AsyncRunWatcher(
                self._service.runs,
                self.id,
                self._state.revision,
                reconnect_timeout=reconnect_timeout,
            )
            async for state in watcher:
                self._state = state
                if printer is not None:
                    printer.update(state)
            if not self.finished:  # the stream ended early (a server off contract)
                await asyncio.sleep(FIRST_RETRY_SECONDS)

    async def cancel(self, reason: str = "") -> AsyncRun:
        """Cancel it (see `Run.cancel`); returns this handle."""
        request = rpb.CancelRunRequest(run=self.id, reason=reason)
        self._state = (await self._service.call(self._service.runs.CancelRun, request)).run
        return self

    async def delete(self) -> None:
        """Delete the finished run with its logs and results."""
        await self._service.call(self._service.runs.DeleteRun, rpb.DeleteRunRequest(run=self.id))

    async def logs(
        self,
        *,
        level: Level | None = None,
        attempt: int = 0,
        streams: Iterable[Stream] = (),
        after: Position | None = None,
    ) -> ItemList[log_pb2.LogEntry]:
        """The entries of its log stored now (see `Run.logs`)."""
        found = self._service.log_entries(
            self.id, after=after, attempt=attempt, level=level, streams=streams
        )
        return ItemList([entry async for entry in found])

    def follow(
        self,
        *,
        level: Level | None = None,
        attempt: int = 0,
        streams: Iterable[Stream] = (),
        only_new: bool = False,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> AsyncLogFollower:
        """Its log entries as they come until the run has ended (see `Run.follow`):
        ``async for entry in run.follow(): ...``."""
        request = lpb.TailLogsRequest(
            run=self.id,
            attempt=attempt,
            only_new=only_new,
            min_level=log_level(level),
            streams=[log_stream(s) for s in streams],
        )
        return AsyncLogFollower(self._service.logs, request, reconnect_timeout=reconnect_timeout)

    async def log_tail(
        self, lines: int = LOG_TAIL_LINES, *, level: Level | None = None, attempt: int = 0
    ) -> ItemList[log_pb2.LogEntry]:
        """The last `lines` entries stored now (at `level` and above; of `attempt`)."""
        found = self._service.log_entries(self.id, attempt=attempt, level=level)
        return ItemList(tail_of([entry async for entry in found], lines))

    async def failure_tail(self, lines: int = LOG_TAIL_LINES) -> list[log_pb2.LogEntry]:
        """The last lines of the last attempt's log at warning and above, else any."""
        attempt = self._state.attempts[-1].number if self._state.attempts else 0
        tail = await self.log_tail(lines, level="warning", attempt=attempt)
        return tail or await self.log_tail(lines, attempt=attempt)

    async def results(self) -> AsyncRunResults:
        """Its result files (listed now), with async `download_files(dir)`."""
        service = self._service

        async def fetch(size: int, token: str) -> rpb.ListRunResultsResponse:
            request = rpb.ListRunResultsRequest(run=self.id, page_size=size, page_token=token)
            page: rpb.ListRunResultsResponse = await service.call(
                service.runs.ListRunResults, request, idempotent=True
            )
            return page

        found = apaged(
            fetch,
            lambda page: page.results,
            limit=None,
            page_size=0,
            max_page_size=MAX_RESULTS_PAGE,
        )
        listed = [result async for result in found]
        return AsyncRunResults(service.runs, self.id, listed, idle_timeout=service.timeout)

    def __repr__(self) -> str:
        return f"AsyncRun({self.id!r}, {state_text(self._state)!r})"

    def _repr_html_(self) -> str:
        return run_html(self._state)
