"""One Connect call presented to the servicers as the grpc.aio context they are written for.

The servicers (and their wrapper in :mod:`batchyard.server.api.instrument`) use only a
small part of that context: the metadata, the time remaining, abort, the done callbacks,
cancelled/done and the code. This class gives exactly that part, so one implementation of
each method serves gRPC and HTTP alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.rpc import code_pb2, status_pb2

Metadata = tuple[tuple[str, str], ...]


class Aborted(grpc.aio.AbortError):
    """Raised by :meth:`HttpContext.abort`, as grpc raises AbortError."""


class HttpContext:
    """What a servicer sees of one HTTP call."""

    def __init__(self, metadata: Metadata, timeout_seconds: float | None) -> None:
        self._metadata = metadata
        self._deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        self._callbacks: list[Callable[[Any], object]] = []
        self._code: grpc.StatusCode | None = None
        self._cancelled = False
        self._done = False
        self.status: status_pb2.Status | None = None
        """The rich status the call was aborted with (None: not aborted)."""

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Sequence[tuple[str, str | bytes]] = (),
    ) -> None:
        status = status_pb2.Status(code=getattr(code_pb2, code.name), message=details)
        for key, value in trailing_metadata:
            if key == "grpc-status-details-bin" and isinstance(value, bytes):
                status = status_pb2.Status.FromString(value)
        self._code, self.status = code, status
        raise Aborted()

    async def send_initial_metadata(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        """Streams send their headers at once over gRPC; the HTTP face sends its response
        headers with the first message (or the end), so there is nothing to do here."""
        del metadata

    def add_done_callback(self, callback: Callable[[Any], object]) -> None:
        self._callbacks.append(callback)

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._done

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def cancel(self) -> None:
        """The client went away."""
        self._cancelled = True

    def finish(self) -> None:
        """The call ended: run the done callbacks (once)."""
        if self._done:
            return
        self._done = True
        for callback in self._callbacks:
            callback(self)
