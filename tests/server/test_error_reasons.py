"""Every error the API answers carries an `ErrorInfo` whose domain is "batchyard.dev" and
whose reason is a value of `batchyard.v1.ErrorReason` (no generic reason of a base class
leaks), and one the method declares in its `error_reasons` option or one any method may
answer. The requests are generated from the service descriptors: every method, called
with an empty request, with each of its fields naming missing and existing objects, with
a bad page token, with seeded random messages, with too small a role and with no token;
a new RPC is covered without a new line here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from batchyard.client.connection import aio_channel
from batchyard.server.domain import errors as domain_errors
from batchyard.v1 import access_pb2, errors_pb2, run_pb2
from batchyard.v1 import access_service_pb2 as apb
from batchyard.v1 import definition_pb2 as dpb
from batchyard.v1 import definition_service_pb2 as dspb
from batchyard.v1 import run_service_pb2 as rpb
from batchyard.v1 import worker_service_pb2 as wpb
from tests.fuzzing import Fuzzer
from tests.rpc import API_MODULES, methods_of
from tests.server.helpers import complete, define, fail_fields, lease, shell_config, submit

METHODS = {f"{m.containing_service.name}/{m.name}": m for m in methods_of(*API_MODULES)}
PREFIX = "ERROR_REASON_"
REASONS = {v.name.removeprefix(PREFIX) for v in errors_pb2.ErrorReason.DESCRIPTOR.values}
REASONS.remove("UNSPECIFIED")
ANY_METHOD = {
    "INVALID_FIELD",
    "UNAUTHENTICATED",
    "PERMISSION_DENIED",
    "CONCURRENCY_LIMIT",
    "SERVER_UNAVAILABLE",
    "INTERNAL",
}
"""The reasons any method may answer (errors.proto says so); the others are declared."""


def declared(method: MethodDescriptor) -> set[str]:
    values = method.GetOptions().Extensions[errors_pb2.error_reasons]
    return {errors_pb2.ErrorReason.Name(v).removeprefix(PREFIX) for v in values}


def test_the_reasons_are_documented_consistently() -> None:
    assert ANY_METHOD <= REASONS
    for name, method in METHODS.items():
        assert declared(method) <= REASONS - ANY_METHOD, name


def all_domain_errors() -> Iterator[type[domain_errors.DomainError]]:
    pending = [domain_errors.DomainError]
    while pending:
        cls = pending.pop()
        yield cls
        pending += cls.__subclasses__()


def test_a_domain_error_has_an_enum_reason_or_cannot_be_raised() -> None:
    import batchyard.server.app  # noqa: F401  (every servicer's own error classes)

    for cls in all_domain_errors():
        if cls.reason:
            assert cls.reason in REASONS, cls
        else:
            with pytest.raises(TypeError):
                cls("no reason")
    assert domain_errors.NotFound.reason == domain_errors.AlreadyExists.reason == ""


@dataclass
class Answer:
    code: grpc.StatusCode
    status: status_pb2.Status | None


async def call(channel: grpc.aio.Channel, method: MethodDescriptor, request: Message) -> Any:
    """Calls any method; a stream is read to its first message only (a follow never ends)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    parse = message_factory.GetMessageClass(method.output_type).FromString
    serialize = type(request).SerializeToString
    try:
        if method.client_streaming:
            await channel.stream_unary(path, serialize, parse)(iter([request]), timeout=10)
        elif method.server_streaming:
            stream = channel.unary_stream(path, serialize, parse)(request, timeout=3)
            async for _ in stream:
                break
            stream.cancel()
        else:
            await channel.unary_unary(path, serialize, parse)(request, timeout=10)
    except grpc.aio.AioRpcError as exc:
        ours = exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and not exc.trailing_metadata()
        if method.server_streaming and ours:
            return None  # our deadline: the stream follows a live run, no error
        status = None
        trailing: Any = exc.trailing_metadata() or ()
        for key, value in trailing:
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
        return Answer(exc.code(), status)
    return None


def tame(request: Message) -> Message:
    """No long poll: a `wait` (LeaseRuns) is zero."""
    if "wait" in request.DESCRIPTOR.fields_by_name:
        request.ClearField("wait")
        request.MergeFrom(type(request)(wait=duration_pb2.Duration()))
    return request


def with_value(method: MethodDescriptor, f: FieldDescriptor, value: object) -> Message | None:
    request = message_factory.GetMessageClass(method.input_type)()
    try:
        if f.is_repeated:
            getattr(request, f.name).append(value)
        else:
            setattr(request, f.name, value)
    except (TypeError, ValueError):
        return None
    return request


@dataclass
class World:
    """Objects of the default workspace the requests can name."""

    names: list[str]
    finished: wpb.LeasedRun
    running: wpb.LeasedRun
    extra: dict[str, list[Message]] = field(default_factory=dict)


def generated(method: MethodDescriptor, world: World, fuzzer: Fuzzer) -> Iterator[Message]:
    """Requests for one method, from its descriptor."""
    yield message_factory.GetMessageClass(method.input_type)()
    missing = [str(uuid.uuid4()), "missing-name", "byt_000000000000"]
    for f in method.input_type.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            for value in [*missing, *world.names]:
                if (request := with_value(method, f, value)) is not None:
                    yield request
        elif f.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
            for number in (-1, 2**31 - 1):
                if (request := with_value(method, f, number)) is not None:
                    yield request
    if "page_token" in method.input_type.fields_by_name:
        yield message_factory.GetMessageClass(method.input_type)(page_token="not-a-token")
    for _ in range(6):
        yield fuzzer.message(method.input_type)
    if method.containing_service.name == "WorkerService" and method.name != "LeaseRuns":
        for leased in (world.running, world.finished):  # a stale or a wrong lease
            request = message_factory.GetMessageClass(method.input_type)(
                run=leased.run, attempt=leased.attempt, lease_id=str(uuid.uuid4())
            )
            yield request
    yield from world.extra.get(f"{method.containing_service.name}/{method.name}", [])


@pytest.fixture
async def world(channel: grpc.aio.Channel, definitions: Any, runs: Any, workers: Any) -> World:
    await define(definitions, "job")
    await submit(runs, "job")
    finished = (await lease(workers))[0]
    await complete(workers, finished, run_pb2.RUN_STATUS_FAILED, **fail_fields(3))
    await submit(runs, "job")
    running = (await lease(workers))[0]
    extra: dict[str, list[Message]] = {
        "DefinitionService/CreateDefinition": [
            dspb.CreateDefinitionRequest(
                definition=dpb.Definition(name="job", config=shell_config())
            )
        ],
        "DefinitionService/UpdateDefinition": [
            dspb.UpdateDefinitionRequest(
                definition="job",
                changes=dpb.Definition(description="late"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
                expected_version=7,
            )
        ],
        "WorkerService/CompleteRun": [
            wpb.CompleteRunRequest(
                run=finished.run,
                attempt=finished.attempt,
                lease_id=finished.lease_id,
                status=run_pb2.RUN_STATUS_SUCCEEDED,
            )
        ],
        "RunService/DownloadRunResult": [
            rpb.DownloadRunResultRequest(run=finished.run, name="absent.txt")
        ],
    }
    names = ["job", "default", "admin", finished.run, running.run, finished.lease_id]
    return World(names, finished, running, extra)


def problems_of(name: str, answer: Answer) -> list[str]:
    method, status = METHODS[name], answer.status
    if status is None:
        return [f"{name}: {answer.code.name} without a google.rpc.Status"]
    infos = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    if len(infos) != 1:
        return [f"{name}: {answer.code.name} with {len(infos)} ErrorInfo details"]
    info, found = infos[0], []
    if info.domain != "batchyard.dev":
        found.append(f"{name}: domain {info.domain!r}")
    if info.reason not in REASONS:
        found.append(f"{name}: reason {info.reason!r} is not an ErrorReason value")
    elif info.reason not in declared(method) | ANY_METHOD:
        found.append(f"{name}: reason {info.reason} is not declared in its error_reasons")
    return found


async def test_every_error_reason_is_an_error_reason_value(
    world: World, channel: grpc.aio.Channel, target: str
) -> None:
    tokens = {}
    for role in (access_pb2.TOKEN_ROLE_VIEWER, access_pb2.TOKEN_ROLE_WORKER):
        made = await channel.unary_unary(
            "/batchyard.v1.TokenService/CreateToken",
            apb.CreateTokenRequest.SerializeToString,
            apb.CreateTokenResponse.FromString,
        )(apb.CreateTokenRequest(name=f"r{role}", role=role))
        tokens[role] = made.secret
    fuzzer = Fuzzer(seed=20261203, token="")
    answers: list[tuple[str, Answer]] = []
    deletes_last = sorted(METHODS.items(), key=lambda item: item[1].name.startswith("Delete"))
    for name, method in deletes_last:
        for request in generated(method, world, fuzzer):
            if (answer := await call(channel, method, tame(request))) is not None:
                answers.append((name, answer))
    empty = {n: message_factory.GetMessageClass(m.input_type)() for n, m in METHODS.items()}
    for token in (*tokens.values(), "byt_000000000000_" + "A" * 43):
        async with aio_channel(target, token=token) as other:
            for name, method in METHODS.items():
                if (answer := await call(other, method, tame(empty[name]))) is not None:
                    answers.append((name, answer))
    async with grpc.aio.insecure_channel(target) as anonymous:
        for name, method in METHODS.items():
            if (answer := await call(anonymous, method, tame(empty[name]))) is not None:
                answers.append((name, answer))

    problems = sorted({p for name, answer in answers for p in problems_of(name, answer)})
    assert not problems, "\n".join(problems)
    seen = {info_reason(a) for _, a in answers}
    assert {n for n, _ in answers} == set(METHODS)  # every method answered some error
    wanted = {"WORKSPACE_EXISTS", "TOKEN_NOT_FOUND", "DEFINITION_EXISTS", "DEFINITION_NOT_FOUND"}
    wanted |= {"RUN_NOT_FOUND", "RESULT_NOT_FOUND", "LEASE_LOST", "WRONG_STATE"}
    wanted |= {"VERSION_CONFLICT", "OUTCOME_CONFLICT", "INVALID_PAGE_TOKEN", "INVALID_FIELD"}
    wanted |= {"PERMISSION_DENIED", "UNAUTHENTICATED", "SCHEDULE_NOT_FOUND"}
    assert wanted <= seen, sorted(wanted - seen)


def info_reason(answer: Answer) -> str:
    for detail in answer.status.details if answer.status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""
