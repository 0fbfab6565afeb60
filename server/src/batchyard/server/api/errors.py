"""One table from domain errors to gRPC status codes, and the rich status they become."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from batchyard.server.domain import errors as d

DOMAIN = "batchyard.dev"

# Most specific first: the first class an error is an instance of decides.
STATUS_BY_ERROR: list[tuple[type[d.DomainError], grpc.StatusCode]] = [
    (d.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (d.InvalidPageToken, grpc.StatusCode.INVALID_ARGUMENT),
    (d.NotFound, grpc.StatusCode.NOT_FOUND),
    (d.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (d.Conflict, grpc.StatusCode.ABORTED),
    (d.LeaseLost, grpc.StatusCode.ABORTED),
    (d.OutcomeConflict, grpc.StatusCode.FAILED_PRECONDITION),
    (d.WrongState, grpc.StatusCode.FAILED_PRECONDITION),
    (d.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (d.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (d.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
]


def status_code_of(error: d.DomainError) -> grpc.StatusCode:
    for cls, code in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL


def rich_status(
    code: grpc.StatusCode, message: str, reason: str, details: list[object]
) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    packed = []
    for detail in [info, *details]:
        holder = any_pb2.Any()
        holder.Pack(detail)  # type: ignore[arg-type]
        packed.append(holder)
    return status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=packed)


def status_of(error: d.DomainError) -> tuple[grpc.StatusCode, status_pb2.Status]:
    code = status_code_of(error)
    details: list[object] = []
    if isinstance(error, d.InvalidArgument):
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    if isinstance(error, d.QueueNotFound) and error.field:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=error.field, description=f"queue {error.name!r} does not exist"
                    )
                ]
            )
        )
    return code, rich_status(code, error.message, error.reason, details)


INTERNAL_STATUS = rich_status(grpc.StatusCode.INTERNAL, "internal error", "INTERNAL", [])
UNAVAILABLE_STATUS = rich_status(
    grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry", "SERVER_UNAVAILABLE", []
)
