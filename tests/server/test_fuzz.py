"""Fuzzing every method of every service through the real server (tests/fuzzing.py makes
the requests): it stays up, answers only the codes a client can act on — never UNKNOWN,
INTERNAL or DATA_LOSS — and its memory stays flat.

The full run is marked `fuzz` (60 s; `uv run pytest -m fuzz tests/server/test_fuzz.py`,
BATCHYARD_FUZZ_SEED and BATCHYARD_FUZZ_SECONDS to vary it); a few seconds of it run
with the default suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import psutil
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from batchyard.client.connection import aio_channel
from batchyard.v1 import (
    definition_service_pb2,
)
from tests.fuzzing import Case, Fuzzer
from tests.rpc import API_MODULES, methods_of

METHODS: list[MethodDescriptor] = methods_of(*API_MODULES, health_pb2, reflection_pb2)
ANSWERS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.CANCELLED,  # we hang up on streams after a few messages
    grpc.StatusCode.DEADLINE_EXCEEDED,  # a follower that keeps following, a long-poll
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.OUT_OF_RANGE,
}
"""What the server may answer; UNKNOWN, INTERNAL, DATA_LOSS, UNAVAILABLE (the server or
its database gone) and UNIMPLEMENTED (every method is) are findings."""
UNIMPLEMENTED = {"/grpc.health.v1.Health/List"}
"""Methods the server does not implement (grpcio-health-checking's servicer has no List)."""
CALL_TIMEOUT = 2.0
MIB = 1024 * 1024


@dataclass
class Report:
    calls: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    findings: list[str] = field(default_factory=list)


async def send(
    channel: grpc.aio.Channel, method: MethodDescriptor, case: Case
) -> grpc.StatusCode | None:
    """One call with raw bytes; a streaming answer is read for up to 3 messages. None: the
    client could not send all its messages (the server had already answered)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    body, metadata = case.messages, case.metadata
    call: grpc.aio.Call
    try:
        if not method.client_streaming and not method.server_streaming:
            unary = channel.unary_unary(path, None, None)
            await unary(body[0], metadata=metadata, timeout=CALL_TIMEOUT)
            return grpc.StatusCode.OK
        if not method.server_streaming:
            upload = channel.stream_unary(path, None, None)
            await upload(iter(body), metadata=metadata, timeout=CALL_TIMEOUT)
            return grpc.StatusCode.OK
        if method.client_streaming:
            call = channel.stream_stream(path, None, None)(
                iter(body), metadata=metadata, timeout=CALL_TIMEOUT
            )
        else:
            call = channel.unary_stream(path, None, None)(
                body[0], metadata=metadata, timeout=CALL_TIMEOUT
            )
        for _ in range(3):
            if await call.read() == grpc.aio.EOF:  # type: ignore[attr-defined]
                return grpc.StatusCode.OK
        call.cancel()
        return grpc.StatusCode.CANCELLED
    except grpc.aio.AioRpcError as exc:
        if _client_side(exc):
            return None
        if exc.code() in ANSWERS or path in UNIMPLEMENTED:
            return exc.code()
        raise Finding(f"{path} [{case.kind}]: {exc.code().name}: {exc.details()!r}") from None


def _client_side(exc: grpc.aio.AioRpcError) -> bool:
    """The client failed to send the next message of a stream the server already ended
    (e.g. refusing an earlier message): not an answer of the server's."""
    return exc.code() == grpc.StatusCode.INTERNAL and (exc.debug_error_string() or "").startswith(
        'Failed "execute_batch": (<grpc._cython.cygrpc.SendMessageOperation'
    )


class Finding(Exception):
    """An answer the server must never give."""


async def fuzz(target: str, token: str, seconds: float, seed: int, workers: int = 8) -> Report:
    """`workers` concurrent callers, each going through every method in turn, for
    `seconds`."""
    report = Report()
    deadline = time.monotonic() + seconds

    async def caller(index: int) -> None:
        fuzzer = Fuzzer(seed * 1000 + index, token)
        order = METHODS[index % len(METHODS) :] + METHODS[: index % len(METHODS)]
        async with grpc.aio.insecure_channel(target) as channel:  # each case brings its token
            while time.monotonic() < deadline:
                for method in order:
                    case = fuzzer.case(method)
                    try:
                        code = await send(channel, method, case)
                        answer = code.name if code is not None else "client-side"
                    except Finding as finding:
                        report.findings.append(str(finding))
                        answer = "FINDING"
                    report.calls += 1
                    report.codes[f"{case.kind.split('/')[0]}:{answer}"] += 1
                    if time.monotonic() >= deadline:
                        return

    await asyncio.gather(*(caller(i) for i in range(workers)))
    return report


async def healthy(target: str) -> None:
    async with aio_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        reply = await check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        listing = channel.unary_unary(
            "/batchyard.v1.DefinitionService/ListDefinitions",
            request_serializer=definition_service_pb2.ListDefinitionsRequest.SerializeToString,
            response_deserializer=definition_service_pb2.ListDefinitionsResponse.FromString,
        )
        await listing(definition_service_pb2.ListDefinitionsRequest(), timeout=5)


def rss() -> int:
    """The process's resident memory once garbage is collected and the C heap's free
    memory handed back (so that what is left is what is still held)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return psutil.Process().memory_info().rss


async def fuzz_and_check(target: str, token: str, seconds: float, seed: int, grow: int) -> Report:
    warm_up = await fuzz(target, token, max(1.0, seconds / 6), seed)  # caches, pools, arenas
    before = rss()
    report = await fuzz(target, token, seconds, seed + 1)
    after = rss()
    await healthy(target)
    report.calls += warm_up.calls
    summary = f"seed {seed}: {report.calls} calls, {dict(sorted(report.codes.items()))}"
    print(f"{summary}; RSS {before / MIB:.0f} -> {after / MIB:.0f} MiB")
    assert not report.findings, f"{summary}\n" + "\n".join(report.findings[:20])
    assert after - before < grow, f"{summary}: RSS grew {(after - before) / MIB:.0f} MiB"
    return report


@pytest.mark.timeout(60)
async def test_fuzz_smoke(target, admin_token):
    """A few seconds of the fuzz run, with the default suite."""
    report = await fuzz_and_check(target, admin_token, 3.0, seed=7, grow=96 * MIB)
    assert report.calls > len(METHODS)


@pytest.mark.fuzz
@pytest.mark.timeout(300)
async def test_fuzz_every_method(target, admin_token):
    seed = int(os.environ.get("BATCHYARD_FUZZ_SEED", "20261121"))
    seconds = float(os.environ.get("BATCHYARD_FUZZ_SECONDS", "60"))
    report = await fuzz_and_check(target, admin_token, seconds, seed, grow=64 * MIB)
    kinds = {key.split(":")[0] for key in report.codes}
    assert {"valid", "random", "deep-nesting", "bad-utf8", "huge-repeated"} <= kinds
