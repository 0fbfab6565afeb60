"""Server streams of the synchronous face, reopened from where they stopped when the
connection breaks (see `batchyard.client.core.streams` for when and how long):
`RunWatcher` (WatchRun) and `LogFollower` (TailLogs), both on `ResumableStream`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

import grpc

from batchyard.client.core.streams import FIRST_RETRY_SECONDS as FIRST_RETRY_SECONDS
from batchyard.client.core.streams import RECONNECT_TIMEOUT as RECONNECT_TIMEOUT
from batchyard.client.core.streams import (
    LogCursor,
    Outage,
    OutageListener,
    OutageTeller,
    RevisionCursor,
)
from batchyard.client.core.streams import is_broken_stream as is_broken_stream
from batchyard.client.errors import DeadlineExceededError, UnavailableError, from_rpc_error
from batchyard.v1 import log_pb2, log_service_pb2_grpc, run_pb2, run_service_pb2_grpc
from batchyard.v1 import log_service_pb2 as pb
from batchyard.v1 import run_service_pb2 as rpb

Message = TypeVar("Message")
Item = TypeVar("Item")
T = TypeVar("T")


def until_reachable(
    call: Callable[[], T],
    *,
    reconnect_timeout: float = RECONNECT_TIMEOUT,
    on_outage: OutageListener | None = None,
    deadline: float | None = None,
) -> T:
    """`call()`, tried again while the server cannot be reached (UNAVAILABLE), for up to
    `reconnect_timeout` seconds of failing (then its UnavailableError) or until
    `deadline` (a `time.monotonic()` value: then DeadlineExceededError): how a wait or a
    follower that starts during an outage waits it out, telling `on_outage`."""
    outage, teller = Outage(reconnect_timeout, FIRST_RETRY_SECONDS), OutageTeller(on_outage)
    first_failed: float | None = None  # when the first try that failed began
    while True:
        tried = time.monotonic()
        try:
            value = call()
        except UnavailableError as error:
            first_failed = tried if first_failed is None else first_failed
            pause = outage.broke(error, tried)
            teller.failing(time.monotonic() - first_failed)
            now = time.monotonic()
            if deadline is not None and now + pause >= deadline:
                time.sleep(max(deadline - now, 0))
                raise DeadlineExceededError(
                    "the deadline passed while the server was unreachable",
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ) from error
            time.sleep(pause)
            outage.waited()
            continue
        outage.connected()
        teller.back()
        return value


class ResumableStream(Generic[Message, Item]):
    """An iterator over the items of a server stream, reopened after it breaks.

    `open_call(timeout)` starts the call (from wherever the reader has got to: the
    caller keeps that state in `items`) with that deadline in seconds, None for none;
    `items(message)` turns each message into the items to yield, in order. The
    iteration ends when the server ends the stream, or after `cancel()`. Errors the
    server answers with (e.g. NotFoundError) are raised as they are; a stream that
    breaks is reopened unless it has been failing for `reconnect_timeout` seconds.
    Past `deadline` (a `time.monotonic()` value) DeadlineExceededError is raised.
    """

    def __init__(
        self,
        open_call: Callable[[float | None], grpc.CallIterator[Message]],
        items: Callable[[Message], Iterable[Item]],
        *,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        deadline: float | None = None,
        on_outage: OutageListener | None = None,
    ) -> None:
        self._open_call = open_call
        self._teller = OutageTeller(on_outage)
        self._items = items
        self._reconnect_timeout = reconnect_timeout
        self._deadline = deadline
        self._lock = threading.Lock()
        self._call: grpc.CallIterator[Message] | None = None
        self._cancelled = threading.Event()
        self._iterator = self._run()
        self.reconnects = 0
        """How many times the stream was reopened after it broke."""

    def __iter__(self) -> ResumableStream[Message, Item]:
        return self

    def __next__(self) -> Item:
        return next(self._iterator)

    def cancel(self) -> None:
        """Stop: the iteration ends (at once if it is waiting). Safe from any thread."""
        self._cancelled.set()
        with self._lock:
            call = self._call
        if call is not None:
            _cancel(call)

    @property
    def cancelled(self) -> bool:
        """Whether `cancel()` was called."""
        return self._cancelled.is_set()

    def _run(self) -> Iterator[Item]:
        outage = Outage(self._reconnect_timeout, FIRST_RETRY_SECONDS)
        while not self._cancelled.is_set():
            opened = time.monotonic()
            try:
                stream = self._open(opened)
                if outage.failing_for is not None and _opened(stream) and outage.connected():
                    self._teller.back()  # the stream is open again (its headers came)
                for message in stream:
                    outage.connected()
                    self._teller.back()
                    yield from self._items(message)
                if outage.connected():  # reopened, and it ended at once: back all the same
                    self._teller.back()
                return  # the server ended the stream: the run has ended
            except grpc.RpcError as exc:
                if self._cancelled.is_set():
                    return
                error = from_rpc_error(exc)
            finally:
                with self._lock:
                    call, self._call = self._call, None
                if call is not None:
                    _cancel(call)  # a no-op once it has ended; stops it when we stop early
            pause = outage.broke(error, opened)
            self._teller.failing(outage.failing_for)
            if self._pause(pause):
                return
            outage.waited()
            self.reconnects += 1

    def _pause(self, pause: float) -> bool:
        """Wait before reopening; whether `cancel()` came meanwhile. Past the deadline
        DeadlineExceededError."""
        now = time.monotonic()
        if self._deadline is not None and now + pause >= self._deadline:
            if self._cancelled.wait(max(self._deadline - now, 0)):
                return True
            raise DeadlineExceededError(
                "the deadline passed while reconnecting", grpc.StatusCode.DEADLINE_EXCEEDED
            )
        return self._cancelled.wait(pause)

    def _open(self, now: float) -> grpc.CallIterator[Message]:
        timeout = None if self._deadline is None else max(self._deadline - now, 0.001)
        call = self._open_call(timeout)
        with self._lock:
            self._call = call
        if self._cancelled.is_set():  # cancelled while opening: `cancel` missed this call
            _cancel(call)
        return call


def _opened(call: object) -> bool:
    """Waits for the call's headers (the server sends them at once) and tells whether it
    is open (grpc's calls have `initial_metadata()` and `running()`)."""
    headers, running = getattr(call, "initial_metadata", None), getattr(call, "running", None)
    if callable(headers):
        headers()
    return bool(running()) if callable(running) else True


def _cancel(call: grpc.Call) -> None:
    call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs


class RunWatcher(ResumableStream[rpb.WatchRunResponse, run_pb2.Run]):
    """The states of a run as they change (what `RunsClient.watch` returns).

    Iterate over it for each new state (a Run whose `revision` moved); it ends after the
    run has reached SUCCEEDED, FAILED or CANCELLED, or after `cancel()` (from any
    thread). `revision` is the last revision seen: pass it as `after_revision` to a later
    `watch` to go on from there.
    """

    def __init__(
        self,
        stub: run_service_pb2_grpc.RunServiceStub,
        run_id: str,
        after_revision: int,
        *,
        reconnect_timeout: float,
        deadline: float | None = None,
        on_outage: OutageListener | None = None,
    ) -> None:
        self._cursor = RevisionCursor(run_id, after_revision)
        super().__init__(
            lambda timeout: stub.WatchRun(self._cursor.request(), timeout=timeout),
            self._cursor.states,
            reconnect_timeout=reconnect_timeout,
            deadline=deadline,
            on_outage=on_outage,
        )

    @property
    def revision(self) -> int:
        """The last revision seen."""
        return self._cursor.revision


class LogFollower(ResumableStream[pb.TailLogsResponse, log_pb2.LogEntry]):
    """The entries of a run's log, live (what `LogsClient.follow` returns).

    Iterate over it for the entries; it ends when the run has ended and every entry was
    delivered, or after `cancel()` (from any thread). `position` is where it has got
    to: pass it as `after` to a later `follow` or `iter` to go on from there.
    """

    def __init__(
        self,
        stub: log_service_pb2_grpc.LogServiceStub,
        request: pb.TailLogsRequest,
        *,
        reconnect_timeout: float,
        on_outage: OutageListener | None = None,
    ) -> None:
        self._cursor = LogCursor(request)
        super().__init__(
            lambda timeout: stub.TailLogs(self._cursor.request(), timeout=timeout),
            self._cursor.entries,
            reconnect_timeout=reconnect_timeout,
            on_outage=on_outage,
        )

    @property
    def position(self) -> log_pb2.LogPosition:
        """The position (attempt, seq) of the last entry received."""
        return self._cursor.position
