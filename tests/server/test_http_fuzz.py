"""The fuzz cases of tests/fuzzing.py sent to the HTTP port (Connect, binary protobuf, and
JSON for the valid ones): the server answers only codes a client can act on, never an
HTTP 5xx of its own making, and stays up."""

from __future__ import annotations

import base64
import json
import struct
import time
from collections import Counter
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor

from batchyard.server.app import App
from batchyard.server.http.connect import GRPC_ONLY
from tests.connect_channel import error_of
from tests.fuzzing import Case, Fuzzer
from tests.rpc import API_MODULES, methods_of
from tests.server.test_fuzz import ANSWERS

pytestmark = pytest.mark.server(http_listen="127.0.0.1:0")
METHODS = [
    m
    for m in methods_of(*API_MODULES)
    if m.containing_service.full_name not in GRPC_ONLY and not m.client_streaming
]


def _headers(case: Case, content_type: str) -> dict[str, str]:
    headers = {"content-type": content_type, "connect-timeout-ms": "2000"}
    for key, value in case.metadata:
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        if key.isascii() and str(value).isprintable() and str(value).isascii():
            headers[key] = str(value)
    return headers


def _as_json(method: MethodDescriptor, data: bytes) -> bytes | None:
    try:
        message = message_factory.GetMessageClass(method.input_type).FromString(data)
        return json.dumps(json_format.MessageToDict(message)).encode()
    except Exception:  # not a valid message: only sent as protobuf
        return None


def _end_message(data: bytes) -> dict[str, Any] | None:
    while len(data) >= 5:
        flags, size = struct.unpack(">BI", data[:5])
        frame, data = data[5 : 5 + size], data[5 + size :]
        if flags & 0x02:
            end: dict[str, Any] = json.loads(frame)
            return end
    return None


async def _send(
    session: aiohttp.ClientSession, base: str, method: MethodDescriptor, case: Case, as_json: bool
) -> grpc.StatusCode:
    path = f"{base}/{method.containing_service.full_name}/{method.name}"
    body = case.messages[0]
    kind = "json" if as_json else "proto"
    if as_json:
        body = _as_json(method, body) or b"{}"
    if method.server_streaming:
        body = struct.pack(">BI", 0, len(body)) + body
        kind = f"connect+{kind}"
    async with session.post(
        path, data=body, headers=_headers(case, f"application/{kind}")
    ) as response:
        if method.server_streaming and response.status == 200:
            data = b""
            async for chunk in response.content.iter_any():
                data += chunk
                if len(data) > 64 * 1024:
                    return grpc.StatusCode.CANCELLED  # we hang up on a long stream
            end = _end_message(data)
            assert end is not None, f"{path}: the stream ended without its end message"
            return error_of(end["error"]).code() if "error" in end else grpc.StatusCode.OK
        data = await response.read()
        if response.status == 200:
            return grpc.StatusCode.OK
        assert response.headers["content-type"] == "application/json", (path, response.status)
        return error_of(json.loads(data)).code()


@pytest.mark.timeout(120)
async def test_fuzz_http_smoke(server: App, admin_token: str) -> None:
    assert server.http is not None
    base = f"http://127.0.0.1:{server.http.port}"
    codes: Counter[str] = Counter()
    findings: list[str] = []
    fuzzer = Fuzzer(16, admin_token)
    deadline = time.monotonic() + 4.0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() < deadline:
            for method in METHODS:
                case = fuzzer.case(method)
                for as_json in (False, True) if case.kind.startswith("valid") else (False,):
                    try:
                        code = await _send(session, base, method, case, as_json)
                    except aiohttp.ClientOSError:  # answered (413) before the body was sent
                        codes[f"{case.kind.split('/')[0]}:client-side"] += 1
                        continue
                    codes[f"{case.kind.split('/')[0]}:{code.name}"] += 1
                    if code not in ANSWERS:
                        findings.append(f"{method.full_name} [{case.kind}]: {code.name}")
        async with session.post(
            f"{base}/batchyard.v1.DefinitionService/ListDefinitions",
            data=b"{}",
            headers={"content-type": "application/json", "authorization": f"Bearer {admin_token}"},
        ) as response:
            assert response.status == 200  # still up
    assert not findings, f"{dict(codes)}\n" + "\n".join(findings[:20])
    assert sum(codes.values()) > len(METHODS)
