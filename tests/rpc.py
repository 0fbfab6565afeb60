"""Helpers to read a failed call the way a client would: code, reason, field violations."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


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
