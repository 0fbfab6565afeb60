"""Server streams that survive a broken connection: reopened from where they stopped.

TailLogs and WatchRun both end by themselves once the run has ended, and both resume
from what the reader saw last (a log position, a run revision). `ResumableStream` reads
such a stream and, when it breaks (the server restarts, a load balancer drops it, the
network blinks), opens it again from there after a pause: 0.2 s, doubling up to 5 s. It
gives up with the last `UnavailableError` after `reconnect_timeout` seconds of failing
continuously.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

import grpc

from batchyard.client.errors import (
    BatchyardError,
    DeadlineExceededError,
    UnavailableError,
    from_rpc_error,
)

Message = TypeVar("Message")
Item = TypeVar("Item")

# Reopening a broken stream: the first pause, doubling up to the longest.
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0
# How long a stream may keep failing before the reader gives up (5 min).
RECONNECT_TIMEOUT = 300.0
# A stream that stayed open this long before it broke had been connected (a call to a
# server that cannot be reached fails sooner: gRPC gives up connecting after 20 s), so
# the failure after it starts a new outage rather than prolonging the previous one.
SETTLED_SECONDS = 30.0

# What a broken HTTP/2 stream looks like when the server did not end the call itself.
_BROKEN_STREAM_DETAILS = ("RST_STREAM", "Stream removed", "Socket closed")


def is_broken_stream(error: BatchyardError) -> bool:
    """Whether a stream that failed with `error` may be reopened: the server could not
    be reached or went away (UNAVAILABLE), or the stream was cut under the call."""
    if isinstance(error, DeadlineExceededError):
        return False
    if isinstance(error, UnavailableError) or error.code == grpc.StatusCode.CANCELLED:
        return True
    if error.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
        return any(text in error.message for text in _BROKEN_STREAM_DETAILS)
    return False


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
    ) -> None:
        self._open_call = open_call
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
        pause = FIRST_RETRY_SECONDS
        failing_since: float | None = None
        while not self._cancelled.is_set():
            opened = time.monotonic()
            try:
                for message in self._open(opened):
                    failing_since, pause = None, FIRST_RETRY_SECONDS
                    yield from self._items(message)
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
            if not is_broken_stream(error):
                raise error
            now = time.monotonic()
            if failing_since is None or now - opened >= SETTLED_SECONDS:
                failing_since, pause = now, FIRST_RETRY_SECONDS  # a new outage
            if now - failing_since >= self._reconnect_timeout:
                raise error
            if self._deadline is not None and now + pause >= self._deadline:
                if self._cancelled.wait(max(self._deadline - now, 0)):
                    return
                raise DeadlineExceededError(
                    "the deadline passed while reconnecting", grpc.StatusCode.DEADLINE_EXCEEDED
                )
            if self._cancelled.wait(pause):
                return
            pause = min(pause * 2, MAX_RETRY_SECONDS)
            self.reconnects += 1

    def _open(self, now: float) -> grpc.CallIterator[Message]:
        timeout = None if self._deadline is None else max(self._deadline - now, 0.001)
        call = self._open_call(timeout)
        with self._lock:
            self._call = call
        if self._cancelled.is_set():  # cancelled while opening: `cancel` missed this call
            _cancel(call)
        return call


def _cancel(call: grpc.Call) -> None:
    call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs
