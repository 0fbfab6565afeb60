"""The Connect protocol's wire pieces: codecs (JSON and binary protobuf), envelopes of
streams, and the error JSON (with the rich status's details: ErrorInfo, BadRequest)."""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from batchyard.server.api.errors import rich_status

# The Connect code names and the HTTP status of a unary error (connectrpc.com/docs/protocol).
HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}
END_STREAM = 0x02
COMPRESSED = 0x01
_KNOWN_DETAILS: dict[str, type[Message]] = {
    "google.rpc.ErrorInfo": error_details_pb2.ErrorInfo,
    "google.rpc.BadRequest": error_details_pb2.BadRequest,
}


def connect_code(code: int) -> str:
    """A google.rpc.Code number as Connect names it ("canceled" has one L there)."""
    name = code_pb2.Code.Name(code).lower() if code in code_pb2.Code.values() else "unknown"  # type: ignore[arg-type]
    return "canceled" if name == "cancelled" else name


class BadMessage(Exception):
    """The request body is not a message of the method's input type."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        code = grpc.StatusCode.INVALID_ARGUMENT
        self.status = rich_status(code, message, "INVALID_FIELD", [])


@dataclass(frozen=True)
class Codec:
    """JSON or binary protobuf, for one message type."""

    json: bool

    @property
    def name(self) -> str:
        return "json" if self.json else "proto"

    def request_bytes(self, data: bytes, descriptor: Descriptor) -> bytes:
        """The request as binary protobuf (what the servicers' wrapper decodes)."""
        if not self.json:
            return data
        message = message_factory.GetMessageClass(descriptor)()
        try:
            json_format.Parse(data or b"{}", message, max_recursion_depth=64)
        except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
            raise BadMessage(f"the request is not a valid {descriptor.full_name} ({exc})") from None
        return message.SerializeToString()

    def encode(self, message: Message) -> bytes:
        if not self.json:
            return message.SerializeToString()
        as_dict = json_format.MessageToDict(message)
        return json.dumps(as_dict, separators=(",", ":")).encode()


def codec_for(content_type: str, streaming: bool) -> Codec | None:
    """The codec a content type names (None: not one of ours)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    prefix = "application/connect+" if streaming else "application/"
    if not kind.startswith(prefix):
        return None
    name = kind.removeprefix(prefix)
    return {"json": Codec(True), "proto": Codec(False)}.get(name)


def envelope(flags: int, data: bytes) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def unenvelope(body: bytes) -> bytes:
    """The one message of a server-streaming call's request body."""
    if len(body) < 5:
        raise BadMessage("the request is not an enveloped Connect message")
    flags, size = struct.unpack(">BI", body[:5])
    if flags & COMPRESSED:
        raise BadMessage("compressed messages are not supported (send identity)")
    if len(body) != 5 + size:
        raise BadMessage("the request envelope's length does not match its body")
    return body[5:]


def error_json(status: status_pb2.Status) -> dict[str, Any]:
    """The Connect error object of a rich status: code, message, and each detail as its
    type, its bytes (base64) and, for the ones we know, `debug` (readable JSON)."""
    error: dict[str, Any] = {"code": connect_code(status.code), "message": status.message}
    details = []
    for detail in status.details:
        type_name = detail.type_url.rpartition("/")[2]
        item: dict[str, Any] = {
            "type": type_name,
            "value": base64.b64encode(detail.value).decode().rstrip("="),
        }
        known = _KNOWN_DETAILS.get(type_name)
        if known is not None:
            item["debug"] = json_format.MessageToDict(known.FromString(detail.value))
        details.append(item)
    if details:
        error["details"] = details
    return error


def end_stream(status: status_pb2.Status | None) -> bytes:
    """The last envelope of a stream: its error (None: it ended well)."""
    body: dict[str, Any] = {} if status is None else {"error": error_json(status)}
    return envelope(END_STREAM, json.dumps(body, separators=(",", ":")).encode())
