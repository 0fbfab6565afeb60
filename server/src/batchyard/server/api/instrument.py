"""Every RPC of our servicers gets a summary log line, and domain errors as rich status.

Domain errors become their status code with ErrorInfo (and BadRequest) details;
transient database failures become UNAVAILABLE; anything else is logged with its
traceback and answered INTERNAL with no detail.

Before the method runs, in this order: the call takes a slot of its kind's concurrency
budget (:mod:`batchyard.server.api.budgets`; RESOURCE_EXHAUSTED when full), the guard
checks its credentials, a call whose deadline already passed is dropped, and a request
that could not be decoded is refused (:mod:`batchyard.server.api.wire`). A call whose
deadline passes while it runs is cancelled by grpc itself (its task gets CancelledError).

The wrapping is done once, when the server is built (:func:`instrument` replaces each
method a servicer implements), not by a grpc.aio interceptor: an interceptor costs a
coroutine and a new handler on every call (measured: ~10% of SubmitRun throughput).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc
import structlog
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.rpc import code_pb2, status_pb2

from batchyard.server.api.budgets import Budget, Budgets, Refused
from batchyard.server.api.errors import INTERNAL_STATUS, UNAVAILABLE_STATUS, rich_status, status_of
from batchyard.server.api.wire import Decode, abort_with, admitted, decoder
from batchyard.server.db.errors import is_bad_value, is_transient
from batchyard.server.domain.errors import DomainError

log = structlog.get_logger("batchyard.server.rpc")
BAD_VALUE_STATUS = rich_status(
    grpc.StatusCode.INVALID_ARGUMENT,
    "invalid request: a value cannot be stored (a number out of range, or text with a NUL "
    "character)",
    "INVALID_FIELD",
    [],
)


class Guard(Protocol):
    """Checks a call's credentials before the method runs (raises a DomainError to
    refuse): `admit` answers from what it already knows (True: admitted, without a
    coroutine, the common case), else the call awaits the guard itself."""

    def admit(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> bool: ...

    async def __call__(
        self, context: grpc.aio.ServicerContext[Any, Any], method: str
    ) -> object: ...


class Observer(Protocol):
    """Told of every call when it ends (metrics): its method ("/pkg.Service/Method"), its
    code, its duration, and its response (unary calls that succeeded; else None)."""

    def finished(self, method: str, code: str, seconds: float, response: object) -> None: ...


class _Call:
    """The bookkeeping of one call: its outcome code and the summary line."""

    def __init__(self, method: str, observer: Observer | None = None) -> None:
        self.method = method
        self.code = grpc.StatusCode.OK
        self.started = time.perf_counter()
        self.observer = observer
        self.response: object = None

    def failed(self, exc: BaseException) -> tuple[grpc.StatusCode, status_pb2.Status]:
        """The status `exc` becomes (logged when it is the server's fault)."""
        if isinstance(exc, Refused):
            code, status = exc.code, exc.status
        elif isinstance(exc, DomainError):
            code, status = status_of(exc)
        elif is_transient(exc):
            code, status = grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_STATUS
            log.warning("database_unavailable", method=self.method, error=type(exc).__name__)
        elif is_bad_value(exc):
            code, status = grpc.StatusCode.INVALID_ARGUMENT, BAD_VALUE_STATUS
            log.warning("database_refused_value", method=self.method, error=type(exc).__name__)
        else:
            code, status = grpc.StatusCode.INTERNAL, INTERNAL_STATUS
            log.error("rpc_crashed", method=self.method, exc_info=exc)
        self.code = code
        return code, status

    def done(self) -> None:
        seconds = time.perf_counter() - self.started
        log.info(
            "rpc_finished",
            method=self.method,
            code=self.code.name,
            duration_ms=round(seconds * 1000, 2),
        )
        if self.observer is not None:
            self.observer.finished(self.method, self.code.name, seconds, self.response)


_EXPIRED = status_pb2.Status(
    code=code_pb2.DEADLINE_EXCEEDED, message="the call's deadline passed before it was served"
)


def _check_deadline(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise Refused(grpc.StatusCode.DEADLINE_EXCEEDED, _EXPIRED)


async def _admit(
    request: Any,
    context: grpc.aio.ServicerContext[Any, Any],
    method: MethodDescriptor,
    path: str,
    guard: Guard,
    budget: Budget,
    decode: Decode,
) -> Any:
    """Budget, credentials, deadline, decoding, for a caller `guard.admit` did not know:
    the request (or stream) to serve."""
    await guard(context, path)
    _check_deadline(context)
    return admitted(request, method, decode)


def _path(method: MethodDescriptor) -> str:
    return f"/{method.full_name.rpartition('.')[0]}/{method.name}"


# A failed call is aborted outside the `except` block, with its request dropped: grpc keeps
# the last call's abort exception until the next call arrives, and through the exception
# being answered (its `__context__`) and the frames of its traceback, that would keep the
# request alive (a 7 MiB message of tiny repeated entries parses into ~300 MiB).


def _wrap_unary(
    behavior: Callable[..., Awaitable[Any]],
    method: MethodDescriptor,
    guard: Guard,
    budget: Budget,
    observer: Observer | None = None,
) -> Callable[..., Awaitable[Any]]:
    path, decode = _path(method), decoder(method)

    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        call = _Call(path, observer)
        try:
            try:
                budget.enter(context)
                if guard.admit(context, path):  # a known token: no extra coroutine
                    _check_deadline(context)
                    request = admitted(request, method, decode)
                else:
                    request = await _admit(request, context, method, path, guard, budget, decode)
                call.response = await behavior(request, context)
                return call.response
            except (grpc.aio.AbortError, asyncio.CancelledError) as exc:
                call.code = _aborted_code(context, exc)
                raise
            except Exception as exc:
                code, status = call.failed(exc)
            request = None  # not kept by the abort (see above)
            await abort_with(context, code, status)
        finally:
            call.done()

    return wrapper


def _wrap_stream(
    behavior: Callable[..., AsyncIterator[Any]],
    method: MethodDescriptor,
    guard: Guard,
    budget: Budget,
    observer: Observer | None = None,
) -> Callable[..., AsyncIterator[Any]]:
    path, decode = _path(method), decoder(method)

    async def wrapper(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        call = _Call(path, observer)
        try:
            try:
                budget.enter(context)
                request = await _admit(request, context, method, path, guard, budget, decode)
                # Headers now, before the first message (which may come much later): a
                # client reconnecting after an outage knows at once that it is back.
                await context.send_initial_metadata(())
                async for response in behavior(request, context):
                    yield response
                return
            except (grpc.aio.AbortError, asyncio.CancelledError) as exc:
                call.code = _aborted_code(context, exc)
                raise
            except Exception as exc:
                code, status = call.failed(exc)
            request = None  # not kept by the abort (see above)
            await abort_with(context, code, status)
        finally:
            call.done()

    return wrapper


def _aborted_code(
    context: grpc.aio.ServicerContext[Any, Any], exc: BaseException
) -> grpc.StatusCode:
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def instrument(
    servicer: object,
    service: ServiceDescriptor,
    guard: Guard,
    budgets: Budgets,
    observer: Observer | None = None,
) -> None:
    """Wrap each method of `service` that `servicer` implements (in place): a slot of
    its budget is taken, then `guard` (the caller's credentials and permission) runs.
    Methods left to the generated base class keep answering UNIMPLEMENTED, unwrapped."""
    for method in service.methods:
        if not _implemented(servicer, method.name):
            continue
        behavior = getattr(servicer, method.name)
        budget = budgets.for_method(method)
        wrapped = (
            _wrap_stream(behavior, method, guard, budget, observer)
            if inspect.isasyncgenfunction(behavior)
            else _wrap_unary(behavior, method, guard, budget, observer)
        )
        setattr(servicer, method.name, wrapped)


def _implemented(servicer: object, name: str) -> bool:
    for cls in type(servicer).__mro__:
        if name in vars(cls):
            return not cls.__module__.startswith("batchyard.v1.")
    return False
