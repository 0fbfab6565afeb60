"""The one call helper of the asyncio face: every unary call the SDK makes goes through
an `AsyncCaller`, which applies the deadline, retries what is safe to repeat (see
`batchyard.client.core.retry`) and raises the failure as a typed `BatchyardError`. It
is `batchyard.client.sync.call.Caller`, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from batchyard.client.connection import DEFAULT_TIMEOUT
from batchyard.client.core.retry import NO_RETRY, CallBudget, RetryPolicy
from batchyard.client.errors import from_rpc_error

R = TypeVar("R")


class AsyncCaller:
    """Makes one unary call: `timeout` seconds for all its tries together (None: no
    deadline), retried per `policy` when `idempotent`, errors typed."""

    def __init__(self, policy: RetryPolicy = NO_RETRY, timeout: float | None = DEFAULT_TIMEOUT):
        self.policy = policy
        self.timeout = timeout
        self.retries = 0
        """How many retries this caller made (for tests and diagnostics)."""

    async def __call__(
        self, method: Callable[..., Awaitable[R]], request: Any, *, idempotent: bool = False
    ) -> R:
        """`await method(request)` with the deadline, again after a pause while it may
        and should be retried; a failure raised as a BatchyardError."""
        budget = CallBudget(self.policy, self.timeout, idempotent)
        while True:
            try:
                return await method(request, timeout=budget.left())
            except grpc.aio.AioRpcError as exc:
                pause = budget.pause(exc.code() == grpc.StatusCode.UNAVAILABLE)
                if pause is None:
                    raise from_rpc_error(exc) from exc
            await asyncio.sleep(pause)
            self.retries += 1
