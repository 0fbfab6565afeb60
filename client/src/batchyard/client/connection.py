"""Channels to a Batchyard server: where it is, and a deadline on every call."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

SERVER_ENV = "BATCHYARD_SERVER"
DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT = 30.0
# After losing the server, the channel tries to connect again after 0.2 s, then backs
# off up to 5 s (gRPC's own default grows to 2 min, which would keep a follower that
# resumes after a server restart failing long after the server is back).
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


def resolve_target(target: str | None = None) -> str:
    """The server address: `target` if given, else $BATCHYARD_SERVER, else localhost:50051."""
    return target or os.environ.get(SERVER_ENV) or DEFAULT_TARGET


def channel(target: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT) -> grpc.Channel:
    """A plaintext channel to the server at `resolve_target(target)`.

    Every unary-response call made on it without a timeout of its own gets `timeout`
    seconds (None: no default deadline). Streaming-response calls (watching a run,
    following logs) run as long as the caller lets them: pass their timeout explicitly.
    After losing the server, it tries to connect again within 0.2 s to 5 s.
    Close the channel when done (it is a context manager).
    """
    plain = grpc.insecure_channel(resolve_target(target), options=CHANNEL_OPTIONS)
    if timeout is None:
        return plain
    return grpc.intercept_channel(plain, DefaultDeadline(timeout))


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class DefaultDeadline(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    """A client interceptor giving unary-response calls a deadline when they have none."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        if details.timeout is not None:
            return details
        return _CallDetails(
            method=details.method,
            timeout=self.timeout,
            metadata=details.metadata,
            credentials=details.credentials,
            wait_for_ready=getattr(details, "wait_for_ready", None),
            compression=getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        """Continue the call with the default deadline if it has none."""
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request_iterator: Iterator[Any],
    ) -> Any:
        """Continue the call with the default deadline if it has none."""
        return continuation(self._details(client_call_details), request_iterator)
