"""The Connect protocol (unary and server-streaming, JSON and binary protobuf) over the
servicers the gRPC port serves, driven by their service descriptors: a service added to
the server is on HTTP with no code here.

Each call becomes an :class:`~batchyard.server.http.context.HttpContext` handed to the
servicer's instrumented method, so budgets, credentials, decoding, limits and the error
translation into rich status are the gRPC port's own; the rich status then becomes
Connect's error JSON (same code, message, ErrorInfo reason, BadRequest violations).
Methods a read permission covers (side-effect free) also answer GET.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.rpc import status_pb2

from batchyard.server.api.auth import PERMISSIONS
from batchyard.server.api.errors import rich_status
from batchyard.server.domain.access import Permission
from batchyard.server.http.codec import (
    HTTP_STATUS,
    BadMessage,
    Codec,
    codec_for,
    connect_code,
    end_stream,
    envelope,
    error_json,
    unenvelope,
)
from batchyard.server.http.context import Aborted, HttpContext, Metadata
from batchyard.server.http.request import Request, Responder

GRPC_ONLY = frozenset({"batchyard.v1.WorkerService"})
"""Services for workers, not people or browsers: served on the gRPC port only."""
_NO_SIDE_EFFECTS = descriptor_pb2.MethodOptions.IdempotencyLevel.NO_SIDE_EFFECTS


def _status(code: grpc.StatusCode, message: str, reason: str) -> status_pb2.Status:
    return rich_status(code, message, reason, [])


@dataclass(frozen=True)
class Route:
    method: MethodDescriptor
    behavior: Callable[..., Any] | None
    """The servicer's instrumented method (None: not implemented)."""
    read_only: bool


def routes_of(served: list[tuple[object, ServiceDescriptor]]) -> dict[str, Route]:
    """ "/package.Service/Method" → its route, for every method of every served service
    but the gRPC-only ones."""
    routes: dict[str, Route] = {}
    for servicer, service in served:
        if service.full_name in GRPC_ONLY:
            continue
        permissions = PERMISSIONS.get(service.full_name, {})
        for method in service.methods:
            behavior = getattr(servicer, method.name, None)
            implemented = inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(
                behavior
            )
            read_only = (
                permissions.get(method.name) == Permission.READ
                or method.GetOptions().idempotency_level == _NO_SIDE_EFFECTS
            )
            if method.client_streaming:
                continue  # Connect over HTTP/1.1 cannot stream requests; none of ours do
            routes[f"/{service.full_name}/{method.name}"] = Route(
                method, behavior if implemented else None, read_only
            )
    return routes


def _timeout(request: Request) -> float | None:
    raw = request.header("connect-timeout-ms")
    if not raw:
        return None
    try:
        return max(int(raw), 0) / 1000
    except ValueError:
        raise BadMessage("connect-timeout-ms is not a number of milliseconds") from None


async def _send_error(respond: Responder, status: status_pb2.Status) -> None:
    code = connect_code(status.code)
    body = json.dumps(error_json(status), separators=(",", ":")).encode()
    await respond.whole(HTTP_STATUS.get(code, 500), "application/json", body)


def _get_message(request: Request) -> tuple[Codec, bytes]:
    encoding = request.query.get("encoding", "")
    codec = {"json": Codec(True), "proto": Codec(False)}.get(encoding)
    if codec is None:
        raise BadMessage("a GET call needs ?encoding=json or ?encoding=proto")
    message = request.query.get("message", "")
    if request.query.get("base64") == "1":
        try:
            return codec, base64.urlsafe_b64decode(message + "=" * (-len(message) % 4))
        except ValueError:
            raise BadMessage("?message= is not base64url") from None
    return codec, message.encode()


class ConnectHandler:
    """Serves the Connect calls of `routes`; `metadata` turns a request into the call's
    metadata (its credentials included)."""

    def __init__(self, routes: dict[str, Route], metadata: Callable[[Request], Metadata]) -> None:
        self.routes = routes
        self._metadata = metadata
        self.open_streams = 0

    async def __call__(self, request: Request, respond: Responder) -> None:
        route = self.routes.get(request.path)
        if route is None:  # Connect answers an unknown route 404
            status = _status(grpc.StatusCode.UNIMPLEMENTED, f"no method {request.path}", "")
            body = json.dumps(error_json(status)).encode()
            await respond.whole(404, "application/json", body)
            return
        if request.method not in ("POST", "GET") or (
            request.method == "GET" and not (route.read_only and not route.method.server_streaming)
        ):
            await respond.whole(405, "text/plain", b"method not allowed\n", [("allow", "POST")])
            return
        if route.method.server_streaming:
            await self._stream(route, request, respond)
        else:
            await self._unary(route, request, respond)

    async def _unary(self, route: Route, request: Request, respond: Responder) -> None:
        context: HttpContext | None = None
        try:
            if request.method == "GET":
                codec, body = _get_message(request)
            else:
                found = codec_for(request.header("content-type"), streaming=False)
                if found is None:
                    await respond.whole(415, "text/plain", b"use application/json or proto\n")
                    return
                codec, body = found, request.body
            data = codec.request_bytes(body, route.method.input_type)
            context = HttpContext(self._metadata(request), _timeout(request))
            response = await _run(route, data, context)
        except BadMessage as exc:
            await _send_error(respond, exc.status)
            return
        except _Failed as failed:
            await _send_error(respond, failed.status)
            return
        finally:
            if context is not None:
                context.finish()
        content_type = "application/json" if codec.json else "application/proto"
        await respond.whole(200, content_type, codec.encode(response))

    async def _stream(self, route: Route, request: Request, respond: Responder) -> None:
        codec = codec_for(request.header("content-type"), streaming=True)
        if codec is None:
            await respond.whole(415, "text/plain", b"use application/connect+json or +proto\n")
            return
        await respond.start(200, f"application/connect+{codec.name}")
        self.open_streams += 1
        context: HttpContext | None = None
        status: status_pb2.Status | None = None
        try:
            data = codec.request_bytes(unenvelope(request.body), route.method.input_type)
            context = HttpContext(self._metadata(request), _timeout(request))
            await _until_gone(
                respond.disconnected(), _pump(route, data, context, codec, respond), context
            )
        except BadMessage as exc:
            status = exc.status
        except _Failed as failed:
            status = failed.status
        finally:
            self.open_streams -= 1
            if context is not None:
                context.finish()
        if not respond.gone:
            await respond.chunk(end_stream(status), more=False)


class _Failed(Exception):
    def __init__(self, status: status_pb2.Status) -> None:
        self.status = status


_UNIMPLEMENTED = _status(grpc.StatusCode.UNIMPLEMENTED, "method not implemented", "")
_DEADLINE = _status(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed", "")


async def _run(route: Route, data: bytes, context: HttpContext) -> Any:
    if route.behavior is None:
        raise _Failed(_UNIMPLEMENTED)
    try:
        async with asyncio.timeout(context.time_remaining()):
            return await route.behavior(data, context)
    except Aborted:
        raise _Failed(context.status or _UNIMPLEMENTED) from None
    except TimeoutError:
        raise _Failed(_DEADLINE) from None


async def _pump(
    route: Route, data: bytes, context: HttpContext, codec: Codec, respond: Responder
) -> None:
    if route.behavior is None:
        raise _Failed(_UNIMPLEMENTED)
    stream: AsyncIterator[Any] = route.behavior(data, context)
    try:
        async with asyncio.timeout(context.time_remaining()):
            async for message in stream:
                await respond.chunk(envelope(0, codec.encode(message)))
    except Aborted:
        raise _Failed(context.status or _UNIMPLEMENTED) from None
    except TimeoutError:
        raise _Failed(_DEADLINE) from None


async def _until_gone(gone: Awaitable[None], work: Awaitable[None], context: HttpContext) -> None:
    """Run `work` until it ends or the client goes away (then cancel it)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(gone)
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            context.cancel()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, _Failed):
                await task
            return
        task.result()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
