"""The one call helper of the synchronous face: every unary call the SDK makes goes
through a `Caller`, which applies the deadline, retries what is safe to repeat (see
`batchyard.client.core.retry`) and raises the failure as a typed `BatchyardError`.

`RetryInterceptor` applies the same policy to the calls that generated stubs make on
`Client.channel`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from batchyard.client.connection import DEFAULT_TIMEOUT, call_details
from batchyard.client.core.part import Part
from batchyard.client.core.retry import NO_RETRY, CallBudget, RetryPolicy, is_idempotent
from batchyard.client.errors import from_rpc_error

R = TypeVar("R")
Stub = TypeVar("Stub")


def _unavailable(exc: grpc.RpcError) -> bool:
    try:
        return bool(exc.code() == grpc.StatusCode.UNAVAILABLE)
    except Exception:  # not a Call: a bare RpcError
        return False


class Caller:
    """Makes one unary call: `timeout` seconds for all its tries together (None: no
    deadline), retried per `policy` when `idempotent`, errors typed."""

    def __init__(
        self,
        policy: RetryPolicy = NO_RETRY,
        timeout: float | None = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self._sleep = sleep
        self.retries = 0
        """How many retries this caller made (for tests and diagnostics)."""

    def __call__(self, method: Callable[..., R], request: Any, *, idempotent: bool = False) -> R:
        """`method(request)` with the deadline, again after a pause while it may and
        should be retried; a failure raised as a BatchyardError."""
        budget = CallBudget(self.policy, self.timeout, idempotent)
        while True:
            try:
                return method(request, timeout=budget.left())
            except grpc.RpcError as exc:
                pause = budget.pause(_unavailable(exc))
                if pause is None:
                    raise from_rpc_error(exc) from exc
            self._sleep(pause)
            self.retries += 1


class OnChannel(Part[Stub, Caller]):
    """A part of the synchronous face made on a channel (`RunsClient`, `LogsClient`):
    its stub made with `_stub_on(channel)`, its calls through `call` (default: a
    `Caller` with a deadline of `timeout` seconds and no retry)."""

    def __init__(
        self,
        channel: grpc.Channel,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        call: Caller | None = None,
    ) -> None:
        super().__init__(self._stub_on(channel), call or Caller(timeout=timeout))

    @staticmethod
    def _stub_on(channel: grpc.Channel) -> Stub:
        raise NotImplementedError


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
        budget = CallBudget(self.policy, client_call_details.timeout, True)
        details = client_call_details
        while True:
            outcome = continuation(details, request)
            pause = budget.pause(outcome.code() == grpc.StatusCode.UNAVAILABLE)
            if pause is None:
                return outcome
            self._sleep(pause)
            self.retries += 1
            details = call_details(client_call_details, budget.left(), details.metadata)
