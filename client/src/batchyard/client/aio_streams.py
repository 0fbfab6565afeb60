"""The asyncio counterparts of `streams`: WatchRun and TailLogs read with `async for`,
reopened from where they stopped when the connection breaks (see `streams` for the
pauses and when it gives up)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, Generic, TypeVar

import grpc

from batchyard.client.errors import from_rpc_error
from batchyard.client.logs import LogEntry, LogPosition
from batchyard.client.streams import (
    FIRST_RETRY_SECONDS,
    MAX_RETRY_SECONDS,
    RECONNECT_TIMEOUT,
    SETTLED_SECONDS,
    is_broken_stream,
)
from batchyard.v1 import log_service_pb2, log_service_pb2_grpc, run_pb2, run_service_pb2_grpc
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
    ) -> None:
        self._open_call = open_call
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
        pause = FIRST_RETRY_SECONDS
        failing_since: float | None = None
        while not self._cancelled.is_set():
            opened = time.monotonic()
            self._call = call = self._open_call()
            try:
                async for message in call:
                    failing_since, pause = None, FIRST_RETRY_SECONDS
                    for item in self._items(message):
                        yield item
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
            if not is_broken_stream(error):
                raise error
            now = time.monotonic()
            if failing_since is None or now - opened >= SETTLED_SECONDS:
                failing_since, pause = now, FIRST_RETRY_SECONDS  # a new outage
            if now - failing_since >= self._reconnect_timeout:
                raise error
            try:
                await asyncio.wait_for(self._cancelled.wait(), pause)
                return
            except TimeoutError:
                pass
            pause = min(pause * 2, MAX_RETRY_SECONDS)
            self.reconnects += 1


def _key(position: LogPosition | LogEntry) -> tuple[int, int]:
    return (position.attempt, position.seq)


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
        self._stub = stub
        self._run_id = run_id
        self.revision = after_revision
        super().__init__(self._watch, self._states, reconnect_timeout=reconnect_timeout)

    def _watch(self) -> Any:
        return self._stub.WatchRun(
            rpb.WatchRunRequest(run=self._run_id, after_revision=self.revision)
        )

    def _states(self, response: rpb.WatchRunResponse) -> Iterable[run_pb2.Run]:
        if response.run.revision > self.revision:
            self.revision = response.run.revision
            yield response.run


class AsyncLogFollower(AsyncResumableStream[log_service_pb2.TailLogsResponse, LogEntry]):
    """A run's log entries as they come, until the run has ended and every entry was
    delivered (`async for entry in follower`); `position` is where it has got to."""

    def __init__(
        self,
        stub: log_service_pb2_grpc.LogServiceAsyncStub,
        request: log_service_pb2.TailLogsRequest,
        *,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> None:
        self._stub = stub
        self._request = request
        self.position = LogPosition()
        self.position.CopyFrom(request.after)
        self._received = False
        super().__init__(self._tail, self._entries, reconnect_timeout=reconnect_timeout)

    def _tail(self) -> Any:
        request = log_service_pb2.TailLogsRequest()
        request.CopyFrom(self._request)
        if self._received:  # resume where the last stream stopped
            request.after.CopyFrom(self.position)
            request.only_new = False
        return self._stub.TailLogs(request)

    def _entries(self, response: log_service_pb2.TailLogsResponse) -> Iterable[LogEntry]:
        self._received = True
        seen = _key(self.position)
        if _key(response.position) > seen:
            self.position = response.position
        for entry in response.entries:
            if _key(entry) > seen:  # never twice, whatever a server sends
                seen = _key(entry)
                yield entry
