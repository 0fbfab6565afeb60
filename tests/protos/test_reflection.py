"""What a client with no proto files learns from the running server: starting from the
service list (ListServices, then FileContainingSymbol of each service, then the files
those depend on), as grpcurl and `buf curl` do, it reaches `batchyard.v1.ErrorReason` and
each method's declared `error_reasons`."""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from batchyard.v1 import errors_pb2
from tests.rpc import API_MODULES, methods_of


async def ask(
    channel: grpc.aio.Channel, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([request]), timeout=10)
    answers = [a async for a in call]
    assert len(answers) == 1 and not answers[0].HasField("error_response"), answers
    answer: reflection_pb2.ServerReflectionResponse = answers[0]
    return answer


async def reflected_files(target: str) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Every file a reflection client reaches from the listed services."""
    Request = reflection_pb2.ServerReflectionRequest
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

    def keep(response: reflection_pb2.ServerReflectionResponse) -> None:
        for raw in response.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[file.name] = file

    def missing() -> set[str]:
        return {d for f in files.values() for d in f.dependency} - set(files)

    async with grpc.aio.insecure_channel(target) as channel:
        listed = await ask(channel, Request(list_services=""))
        for service in listed.list_services_response.service:
            keep(await ask(channel, Request(file_containing_symbol=service.name)))
        while wanted := missing():
            keep(await ask(channel, Request(file_by_filename=wanted.pop())))
    return files


async def test_error_reason_is_reachable_by_reflection(target: str) -> None:
    files = await reflected_files(target)
    errors = files["batchyard/v1/errors.proto"]
    assert [e.name for e in errors.enum_type] == ["ErrorReason"]
    reflected = {v.name for v in errors.enum_type[0].value}
    assert reflected == set(errors_pb2.ErrorReason.keys())

    # A client builds its own pool from what reflection gave and reads the option.
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(name: str) -> None:
        if name not in added:
            for dependency in files[name].dependency:
                add(dependency)
            pool.Add(files[name])
            added.add(name)

    for name in files:
        add(name)
    extension = pool.FindExtensionByName("batchyard.v1.error_reasons")
    assert extension.containing_type is not None
    options_class = message_factory.GetMessageClass(extension.containing_type)
    for method in methods_of(*API_MODULES):
        raw = pool.FindMethodByName(method.full_name).GetOptions().SerializeToString()
        options = options_class.FromString(raw)
        reflected_reasons: list[int] = list(options.Extensions[extension])  # type: ignore[index]
        assert reflected_reasons == list(method.GetOptions().Extensions[errors_pb2.error_reasons])
        if method.name.startswith(("Get", "Delete", "Cancel", "Watch", "Revoke")):
            assert reflected_reasons, method.full_name  # a call naming an object says which
