"""A channel that speaks the Connect protocol to the HTTP port, shaped like the parts of
grpc.aio.Channel the descriptor-driven tests use (unary_unary, unary_stream,
stream_unary), so the same tests run over gRPC and over HTTP and compare the answers.

Failures are raised as grpc.aio.AioRpcError rebuilt from Connect's error JSON (code,
message, and the details as `grpc-status-details-bin`), so `tests.rpc.failure` and the
tenancy tests read them unchanged. Services the HTTP port does not serve (the worker's)
and client streams go to the gRPC port: a test over HTTP still sees every method.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import grpc
from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.rpc import code_pb2, status_pb2

from batchyard.client.connection import aio_channel
from batchyard.server.http.connect import GRPC_ONLY

Serialize = Callable[[Any], bytes]
Parse = Callable[[bytes], Any]


def _code(name: str) -> grpc.StatusCode:
    name = "CANCELLED" if name == "canceled" else name.upper()
    return getattr(grpc.StatusCode, name, grpc.StatusCode.UNKNOWN)


def error_of(error: dict[str, Any]) -> grpc.aio.AioRpcError:
    """The AioRpcError a gRPC client would have seen for this Connect error."""
    code = _code(str(error.get("code", "unknown")))
    message = str(error.get("message", ""))
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message)
    for detail in error.get("details", []):
        value = detail["value"] + "=" * (-len(detail["value"]) % 4)
        status.details.append(
            any_pb2.Any(
                type_url=f"type.googleapis.com/{detail['type']}", value=base64.b64decode(value)
            )
        )
    trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, message, None)


class ConnectChannel:
    def __init__(self, base_url: str, grpc_target: str, token: str | None, json: bool = False):
        self.base = base_url.rstrip("/")
        self.token = token
        self.json = json
        self._session = aiohttp.ClientSession()
        self._grpc = aio_channel(grpc_target, token=token) if token else None
        self._grpc_target = grpc_target

    async def __aenter__(self) -> ConnectChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()
        if self._grpc is not None:
            await self._grpc.close(None)

    def _headers(self, content_type: str, timeout: float | None) -> dict[str, str]:
        headers = {"content-type": content_type, "connect-protocol-version": "1"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if timeout is not None:
            headers["connect-timeout-ms"] = str(int(timeout * 1000))
        return headers

    def _grpc_channel(self) -> grpc.aio.Channel:
        if self._grpc is None:
            self._grpc = grpc.aio.insecure_channel(self._grpc_target)
        return self._grpc

    def _body(self, path: str, data: bytes) -> bytes:
        if not self.json:
            return data
        method = descriptor_pool.Default().FindMethodByName(path.strip("/").replace("/", "."))
        message = message_factory.GetMessageClass(method.input_type).FromString(data)
        return json.dumps(json_format.MessageToDict(message)).encode()

    def _message(self, path: str, data: bytes, parse: Parse) -> Any:
        if not self.json:
            return parse(data)
        method = descriptor_pool.Default().FindMethodByName(path.strip("/").replace("/", "."))
        message = message_factory.GetMessageClass(method.output_type)()
        json_format.Parse(data, message)
        return parse(message.SerializeToString())

    def _grpc_only(self, path: str) -> bool:
        return path.strip("/").split("/")[0] in GRPC_ONLY

    def unary_unary(self, path: str, serialize: Serialize, parse: Parse) -> Any:
        if self._grpc_only(path):
            return self._grpc_channel().unary_unary(path, serialize, parse)
        kind = "application/json" if self.json else "application/proto"

        async def call(request: Any, timeout: float | None = None, **_: Any) -> Any:
            body = self._body(path, serialize(request))
            async with self._session.post(
                self.base + path, data=body, headers=self._headers(kind, timeout)
            ) as response:
                data = await response.read()
                if response.status != 200:
                    raise error_of(json.loads(data))
                return self._message(path, data, parse)

        return call

    def unary_stream(self, path: str, serialize: Serialize, parse: Parse) -> Any:
        if self._grpc_only(path):
            return self._grpc_channel().unary_stream(path, serialize, parse)
        kind = "application/connect+json" if self.json else "application/connect+proto"

        async def call(request: Any, timeout: float | None = None, **_: Any) -> AsyncIterator[Any]:
            body = self._body(path, serialize(request))
            framed = struct.pack(">BI", 0, len(body)) + body
            async with self._session.post(
                self.base + path, data=framed, headers=self._headers(kind, timeout)
            ) as response:
                if response.status != 200:
                    raise error_of(json.loads(await response.read()))
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    while len(buffer) >= 5:
                        flags, size = struct.unpack(">BI", buffer[:5])
                        if len(buffer) < 5 + size:
                            break
                        frame, buffer = buffer[5 : 5 + size], buffer[5 + size :]
                        if flags & 0x02:
                            end = json.loads(frame)
                            if "error" in end:
                                raise error_of(end["error"])
                            return
                        yield self._message(path, frame, parse)
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNKNOWN,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                "the stream ended without its end-of-stream message",
                None,
            )

        return call

    def stream_unary(self, path: str, serialize: Serialize, parse: Parse) -> Any:
        return self._grpc_channel().stream_unary(path, serialize, parse)
