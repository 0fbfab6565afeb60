"""Helpers to read a failed call the way a client would (code, reason, field violations),
and the API's methods as its descriptors list them."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from batchyard.v1 import (
    access_service_pb2,
    definition_service_pb2,
    fleet_service_pb2,
    log_service_pb2,
    queue_service_pb2,
    retention_service_pb2,
    run_service_pb2,
    schedule_service_pb2,
    worker_service_pb2,
)

API_MODULES: tuple[ModuleType, ...] = (
    definition_service_pb2,
    run_service_pb2,
    worker_service_pb2,
    log_service_pb2,
    access_service_pb2,
    queue_service_pb2,
    schedule_service_pb2,
    retention_service_pb2,
    fleet_service_pb2,
)
"""Every module of ours that defines a service (tests/server/test_tenancy.py checks that
the server serves exactly these)."""


def methods_of(*modules: ModuleType) -> list[MethodDescriptor]:
    """Every method of every service the modules define."""
    return [
        method
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    ]


@dataclass
class Failure:
    code: grpc.StatusCode
    message: str
    reason: str
    fields: dict[str, str]


def failure(exc: grpc.aio.AioRpcError) -> Failure:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    reason, fields = "", {}
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = {v.field: v.description for v in bad.field_violations}
    return Failure(exc.code(), exc.details() or "", reason, fields)
