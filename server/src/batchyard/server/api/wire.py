"""Serving servicers on the grpc server, with request decoding in our hands.

grpc would parse each request before the method runs, and answer bytes it cannot parse
with UNKNOWN and the parser's exception text. Here grpc hands over the raw bytes, and the
method's wrapper decodes them after the call took its budget slot and its credentials
were checked: an anonymous caller cannot make the server parse anything (a message of
millions of tiny repeated entries takes ~45 times its size in memory), and bytes that are
not a valid request (corrupt wire format, invalid UTF-8 in a string field, nesting beyond
the parser's depth) are answered INVALID_ARGUMENT.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import any_pb2, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.rpc import error_details_pb2, status_pb2

from batchyard.server.api.budgets import Budget, Refused
from batchyard.server.api.durations import bad_durations
from batchyard.server.api.errors import rich_status, status_of
from batchyard.server.domain.errors import InvalidArgument

Decode = Callable[[bytes], Any]
"""Raw request bytes to the request message; raises Refused if they are not one."""


def decoder(method: MethodDescriptor) -> Decode:
    """The decoder of `method`'s requests."""
    message_class = message_factory.GetMessageClass(method.input_type)
    type_name = method.input_type.full_name

    def decode(data: bytes) -> Any:
        try:
            request = message_class.FromString(data)
        except Exception as exc:  # a boundary: DecodeError, or the parser's depth guard
            why = "a string field is not valid UTF-8" if "UTF-8" in str(exc) else "corrupt"
            code = grpc.StatusCode.INVALID_ARGUMENT
            message = f"the request is not a valid {type_name} message ({why})"
            raise Refused(code, rich_status(code, message, "INVALID_FIELD", [])) from None
        violations = bad_durations(request)
        if violations:
            code, status = status_of(InvalidArgument(violations))
            raise Refused(code, status)
        return request

    return decode


async def decoded(requests: AsyncIterator[bytes], decode: Decode) -> AsyncIterator[Any]:
    """The messages of a client stream; raises Refused at the first undecodable one."""
    async for data in requests:
        yield decode(data)


def admitted(request: Any, method: MethodDescriptor, decode: Decode) -> Any:
    """The decoded request, or for a client stream the stream of decoded requests."""
    return decoded(request, decode) if method.client_streaming else decode(request)


async def abort(context: grpc.aio.ServicerContext[Any, Any], refused: Refused) -> None:
    """End the call with the refusal's rich status (raises AbortError)."""
    await abort_with(context, refused.code, refused.status)


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, status: status_pb2.Status
) -> None:
    """End the call with `status` in the trailers, cut to fit (raises AbortError)."""
    status = bounded(status)
    await context.abort(
        code,
        status.message,
        trailing_metadata=(("grpc-status-details-bin", status.SerializeToString()),),
    )


MAX_STATUS_MESSAGE_BYTES = 1024
MAX_STATUS_BYTES = 2048
"""An error's message and details echo what the caller sent (a name, a field's value):
cut so that the trailers stay far below a client's metadata limit (8 KiB by default),
which would otherwise turn the answer into a RESOURCE_EXHAUSTED of the client's own."""
_MAX_VIOLATIONS = 10
_MAX_VIOLATION_BYTES = 120


def _cut(text: str, limit: int) -> str:
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore") + "…"


def bounded(status: status_pb2.Status) -> status_pb2.Status:
    """`status` with its message and details cut to MAX_STATUS_* (ErrorInfo is kept)."""
    message = _cut(status.message, MAX_STATUS_MESSAGE_BYTES)
    if message == status.message and status.ByteSize() <= MAX_STATUS_BYTES:
        return status
    cut = status_pb2.Status(code=status.code, message=message)
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            cut.details.append(detail)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            cut.details.append(_short_bad_request(detail))
    if cut.ByteSize() > MAX_STATUS_BYTES:  # the field paths alone were too long
        kept = [d for d in cut.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        del cut.details[:]
        cut.details.extend(kept)
    return cut


def _short_bad_request(detail: any_pb2.Any) -> any_pb2.Any:
    bad = error_details_pb2.BadRequest()
    detail.Unpack(bad)
    short = error_details_pb2.BadRequest()
    for violation in bad.field_violations[:_MAX_VIOLATIONS]:
        short.field_violations.add(
            field=_cut(violation.field, _MAX_VIOLATION_BYTES),
            description=_cut(violation.description, _MAX_VIOLATION_BYTES),
        )
    packed = any_pb2.Any()
    packed.Pack(short)
    return packed


_HANDLERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_service(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    *,
    probe_budget: Budget | None = None,
) -> None:
    """Serve `servicer`'s methods of `service`, each getting its request as raw bytes.
    Our servicers come instrumented (budget, credentials, decoding); a service served
    without a token (health, reflection) passes `probe_budget`, and this wraps its
    methods with that budget and the decoding."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        behavior = getattr(servicer, method.name)
        if not _is_async(behavior):  # left to the generated base class
            behavior = _unimplemented(method)
        elif probe_budget is not None:
            behavior = _probe(behavior, method, probe_budget)
        make = _HANDLERS[(method.client_streaming, method.server_streaming)]
        response_class = message_factory.GetMessageClass(method.output_type)
        handlers[method.name] = make(
            behavior,
            request_deserializer=None,  # the raw bytes: the wrapper decodes them
            response_serializer=response_class.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    # As the generated add_*_to_server does (the stubs do not know this method yet).
    server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]


def _is_async(behavior: object) -> bool:
    return inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)


def _unimplemented(method: MethodDescriptor) -> Any:
    message = f"{method.full_name} is not implemented by this server"

    async def unimplemented(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    return unimplemented


def _probe(behavior: Any, method: MethodDescriptor, budget: Budget) -> Any:
    decode = decoder(method)

    def admit(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        budget.enter(context)
        return admitted(request, method, decode)

    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                async for response in behavior(admit(request, context), context):
                    yield response
            except Refused as refused:
                await abort(context, refused)

        return stream

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await behavior(admit(request, context), context)
        except Refused as refused:
            await abort(context, refused)

    return unary
