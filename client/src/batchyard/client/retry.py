"""Retrying calls that are safe to repeat when the server cannot be reached.

A call is retried only when it failed with UNAVAILABLE (the server is restarting, a load
balancer has no replica ready, the network blinked) and repeating it cannot do anything
twice: reads (Get…, List…) and a SubmitRun that carries a `request_id` (the server
returns the run created first). Everything else fails at once: a CancelRun or a
CreateDefinition that timed out may have been applied.

The pauses grow exponentially (0.25 s, 0.5 s, 1 s, ... up to `max_backoff`), each cut by
a random part of up to half (jitter), so that many clients losing one server do not
come back in step. The call's deadline covers every try: no retry starts after it.

Streams resume on their own (`RunsClient.watch`, `LogsClient.follow`), from where they
stopped; `RetryInterceptor` covers the unary calls of a synchronous channel and
`AsyncRetry` those of the asyncio client.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

T = TypeVar("T")

# Methods whose every call is safe to repeat (reads), by their last path component.
_READ_PREFIXES = ("Get", "List")
# Methods safe to repeat when their request carries a request id.
_KEYED = frozenset({"SubmitRun"})


@dataclass(frozen=True)
class RetryPolicy:
    """How calls that are safe to repeat are retried on UNAVAILABLE.

    Attributes:
        max_attempts: tries in all, the first included (1: no retry).
        initial_backoff: seconds before the first retry.
        max_backoff: the longest pause between two tries.
        multiplier: how much each pause grows over the previous one.
        jitter: the part of each pause that is random (0: none, 0.5: the pause is
            between half and all of its nominal length).
    """

    max_attempts: int = 6
    initial_backoff: float = 0.25
    max_backoff: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_backoff < 0 or self.max_backoff < 0 or self.multiplier < 1:
            raise ValueError("backoffs must be 0 or more and the multiplier at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The pauses before each retry, in seconds (`max_attempts - 1` of them)."""
        draw = (rng or random).random
        nominal = self.initial_backoff
        for _ in range(self.max_attempts - 1):
            capped = min(nominal, self.max_backoff)
            yield capped * (1 - self.jitter * draw())
            nominal *= self.multiplier


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries."""


def is_idempotent(method: str | bytes, request: Any) -> bool:
    """Whether the call of `method` ("/batchyard.v1.RunService/GetRun") with `request`
    may be repeated without doing anything twice."""
    if isinstance(method, bytes):
        method = method.decode()
    name = method.rsplit("/", 1)[-1]
    if name.startswith(_READ_PREFIXES):
        return True
    return name in _KEYED and bool(getattr(request, "request_id", ""))


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


@dataclass(frozen=True)
class _Details(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def _with_timeout(details: grpc.ClientCallDetails, timeout: float | None) -> _Details:
    return _Details(
        method=details.method,
        timeout=timeout,
        metadata=details.metadata,
        credentials=details.credentials,
        wait_for_ready=getattr(details, "wait_for_ready", None),
        compression=getattr(details, "compression", None),
    )


class RetryInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """A synchronous client interceptor retrying idempotent unary calls on UNAVAILABLE,
    within the call's deadline (see `RetryPolicy`)."""

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self._sleep = sleep
        self.retries = 0
        """How many retries this interceptor made (for tests and diagnostics)."""

    def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        """Make the call, and again after a pause while it fails with UNAVAILABLE."""
        if not is_idempotent(client_call_details.method, request):
            return continuation(client_call_details, request)
        timeout = client_call_details.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        details = client_call_details
        for delay in self.policy.delays():
            outcome = continuation(details, request)
            if outcome.code() != grpc.StatusCode.UNAVAILABLE:
                return outcome
            left = _left(deadline)
            if left is not None and left <= delay:
                return outcome
            self._sleep(delay)
            self.retries += 1
            left = _left(deadline)
            details = _with_timeout(client_call_details, left)
        return continuation(details, request)


class AsyncRetry:
    """Retries idempotent unary calls of the asyncio client on UNAVAILABLE (see
    `RetryPolicy`); `call` raises grpc.aio.AioRpcError as the stub does."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.retries = 0
        """How many retries were made."""

    async def call(
        self,
        method: Callable[..., Awaitable[T]],
        request: Any,
        *,
        seconds: float | None,
        idempotent: bool,
    ) -> T:
        """`await method(request, timeout=seconds)` (the deadline of every try together),
        retried while it may and should be."""
        deadline = None if seconds is None else time.monotonic() + seconds
        delays = self.policy.delays() if idempotent else iter(())
        while True:
            try:
                return await method(request, timeout=_left(deadline))
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                delay = next(delays, None)
                left = _left(deadline)
                if delay is None or (left is not None and left <= delay):
                    raise
            await asyncio.sleep(delay)
            self.retries += 1
