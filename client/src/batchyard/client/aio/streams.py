"""Server streams of the asyncio face, read with `async for` and reopened from where
they stopped when the connection breaks (see `batchyard.client.core.streams` for when
and how long): `AsyncRunWatcher` (WatchRun) and `AsyncLogFollower` (TailLogs)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, Generic, TypeVar

import grpc

from batchyard.client.core.streams import (
    FIRST_RETRY_SECONDS,
    RECONNECT_TIMEOUT,
    LogCursor,
    Outage,
    OutageListener,
    OutageTeller,
    RevisionCursor,
)
from batchyard.client.errors import from_rpc_error
from batchyard.v1 import (
    log_pb2,
    log_service_pb2,
    log_service_pb2_grpc,
    run_pb2,
    run_service_pb2_grpc,
)
from batchyard.v1 import run_service_pb2 as rpb

Message = TypeVar("Message")
Item = TypeVar("Item")


class AsyncResumableStream(Generic[Message, Item]):
    """An async iterator over the items of a server stream, reopened after it breaks.

    `open_call()` starts the call from wherever the reader has got to (the caller keeps
    that state in `items`); `items(message)` turns each message into items. It ends
    when the server ends the stream or after `cancel()`; errors the server answers with
    are raised as they are; a stream failing for `reconnect_timeout` seconds raises its
    last UnavailableError.
    """

    def __init__(
        self,
        open_call: Callable[[], Any],
        items: Callable[[Message], Iterable[Item]],
        *,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        on_outage: OutageListener | None = None,
    ) -> None:
        self._open_call = open_call
        self._teller = OutageTeller(on_outage)
        self._items = items
        self._reconnect_timeout = reconnect_timeout
        self._cancelled = asyncio.Event()
        self._call: Any = None
        self._iterator = self._run()
        self.reconnects = 0
        """How many times the stream was reopened after it broke."""

    def __aiter__(self) -> AsyncResumableStream[Message, Item]:
        return self

    async def __anext__(self) -> Item:
        return await anext(self._iterator)

    def cancel(self) -> None:
        """Stop: the iteration ends (at once if it is waiting)."""
        self._cancelled.set()
        if self._call is not None:
            self._call.cancel()

    async def aclose(self) -> None:
        """Stop and release the call (what `async with contextlib.aclosing(...)` calls)."""
        self.cancel()
        await self._iterator.aclose()

    async def _run(self) -> AsyncGenerator[Item, None]:
        outage = Outage(self._reconnect_timeout, FIRST_RETRY_SECONDS)
        while not self._cancelled.is_set():
            opened = time.monotonic()
            self._call = call = self._open_call()
            try:
                if outage.failing_for is not None:
                    await call.initial_metadata()  # the server's headers come first, at once
                    if not call.done() and outage.connected():
                        self._teller.back()  # the stream is open again
                async for message in call:
                    outage.connected()
                    self._teller.back()
                    for item in self._items(message):
                        yield item
                if outage.connected():  # reopened, and it ended at once: back all the same
                    self._teller.back()
                return  # the server ended the stream: the run has ended
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._cancelled.is_set() and not (task and task.cancelling()):
                    return  # our own cancel() of the call
                raise
            except grpc.aio.AioRpcError as exc:
                if self._cancelled.is_set():
                    return
                error = from_rpc_error(exc)
            finally:
                self._call = None
                call.cancel()
            pause = outage.broke(error, opened)
            self._teller.failing(outage.failing_for)
            if await self._pause(pause):
                return
            outage.waited()
            self.reconnects += 1

    async def _pause(self, pause: float) -> bool:
        """Wait before reopening; whether `cancel()` came meanwhile."""
        try:
            await asyncio.wait_for(self._cancelled.wait(), pause)
        except TimeoutError:
            return False
        return True


class AsyncRunWatcher(AsyncResumableStream[rpb.WatchRunResponse, run_pb2.Run]):
    """Each new state of a run until it has ended (`async for state in watcher`);
    `revision` is the last revision seen."""

    def __init__(
        self,
        stub: run_service_pb2_grpc.RunServiceAsyncStub,
        run_id: str,
        after_revision: int = 0,
        *,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> None:
        self._cursor = RevisionCursor(run_id, after_revision)
        super().__init__(
            lambda: stub.WatchRun(self._cursor.request()),
            self._cursor.states,
            reconnect_timeout=reconnect_timeout,
        )

    @property
    def revision(self) -> int:
        """The last revision seen."""
        return self._cursor.revision


class AsyncLogFollower(AsyncResumableStream[log_service_pb2.TailLogsResponse, log_pb2.LogEntry]):
    """A run's log entries as they come, until the run has ended and every entry was
    delivered (`async for entry in follower`); `position` is where it has got to."""

    def __init__(
        self,
        stub: log_service_pb2_grpc.LogServiceAsyncStub,
        request: log_service_pb2.TailLogsRequest,
        *,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        on_outage: OutageListener | None = None,
    ) -> None:
        self._cursor = LogCursor(request)
        super().__init__(
            lambda: stub.TailLogs(self._cursor.request()),
            self._cursor.entries,
            reconnect_timeout=reconnect_timeout,
            on_outage=on_outage,
        )

    @property
    def position(self) -> log_pb2.LogPosition:
        """The position (attempt, seq) of the last entry received."""
        return self._cursor.position
