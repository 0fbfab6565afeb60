"""from_rpc_error: status codes and google.rpc details back to typed exceptions."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from batchyard.client import errors
from batchyard.client.errors import from_rpc_error
from batchyard.v1 import definition_service_pb2 as pb

DETAILS_KEY = "grpc-status-details-bin"


class FakeCall(grpc.RpcError, grpc.Call):
    """A failed call as the sync stack raises it: an RpcError that is also a Call."""

    def __init__(self, code, details, trailing=()):
        self._code, self._details, self._trailing = code, details, trailing

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing

    def initial_metadata(self):
        return ()

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


def packed(*details):
    out = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        out.append(holder)
    return out


def rich_call(code, message, reason="", violations=(), domain=errors.DOMAIN, extra=()):
    details: list[Message] = []
    if reason:
        details.append(error_details_pb2.ErrorInfo(reason=reason, domain=domain))
    if violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in violations
                ]
            )
        )
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=message, details=[*packed(*details), *extra]
    )
    return FakeCall(code, message, ((DETAILS_KEY, status.SerializeToString()),))


def test_invalid_argument_with_field_violations():
    call = rich_call(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid request: definition.config.timeout: must be positive",
        reason="INVALID_FIELD",
        violations=[("definition.config.timeout", "must be positive"), ("definition.name", "x")],
    )
    error = from_rpc_error(call)
    assert type(error) is errors.InvalidArgumentError
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_FIELD"
    assert error.message == "invalid request: definition.config.timeout: must be positive"
    assert error.field_violations == [
        ("definition.config.timeout", "must be positive"),
        ("definition.name", "x"),
    ]
    assert error.__cause__ is call


def test_lease_lost_is_a_conflict_of_its_own():
    lost = from_rpc_error(rich_call(grpc.StatusCode.ABORTED, "lease lost", reason="LEASE_LOST"))
    assert type(lost) is errors.LeaseLostError
    assert isinstance(lost, errors.ConflictError)
    conflict = from_rpc_error(
        rich_call(grpc.StatusCode.ABORTED, "changed", reason="VERSION_CONFLICT")
    )
    assert type(conflict) is errors.VersionConflictError
    assert isinstance(conflict, errors.ConflictError)
    assert conflict.reason == "VERSION_CONFLICT"


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (grpc.StatusCode.NOT_FOUND, "DEFINITION_NOT_FOUND", errors.DefinitionNotFoundError),
        (grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND", errors.RunNotFoundError),
        (grpc.StatusCode.NOT_FOUND, "RESULT_NOT_FOUND", errors.ResultNotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, "DEFINITION_EXISTS", errors.DefinitionExistsError),
        (grpc.StatusCode.FAILED_PRECONDITION, "WRONG_STATE", errors.WrongStateError),
        (grpc.StatusCode.NOT_FOUND, "SOMETHING_NEW", errors.NotFoundError),
    ],
)
def test_reasons_pick_a_subclass_of_the_code_class(code, reason, cls):
    error = from_rpc_error(rich_call(code, "no", reason=reason))
    assert type(error) is cls
    assert isinstance(error, errors.ERROR_BY_CODE[code])


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, errors.NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExistsError),
        (grpc.StatusCode.ABORTED, errors.ConflictError),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPreconditionError),
        (grpc.StatusCode.UNAVAILABLE, errors.UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceededError),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, errors.UnauthenticatedError),
        (grpc.StatusCode.INTERNAL, errors.BatchyardError),
        (grpc.StatusCode.UNIMPLEMENTED, errors.BatchyardError),
    ],
)
def test_class_by_status_code_without_details(code, cls):
    error = from_rpc_error(FakeCall(code, "it went wrong"))
    assert type(error) is cls
    assert (error.code, error.message, error.reason, error.field_violations) == (
        code,
        "it went wrong",
        "",
        [],
    )


def test_no_trailing_metadata_at_all():
    error = from_rpc_error(FakeCall(grpc.StatusCode.NOT_FOUND, "gone", trailing=None))
    assert type(error) is errors.NotFoundError
    assert error.message == "gone"


def test_malformed_details_are_ignored():
    call = FakeCall(grpc.StatusCode.NOT_FOUND, "gone", ((DETAILS_KEY, b"\xff\x00garbage"),))
    error = from_rpc_error(call)
    assert type(error) is errors.NotFoundError
    assert (error.message, error.reason) == ("gone", "")


def test_malformed_detail_inside_a_good_status_is_ignored():
    bad = any_pb2.Any(
        type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\xff\xff\xff\xff"
    )
    call = rich_call(grpc.StatusCode.NOT_FOUND, "gone", extra=[bad])
    error = from_rpc_error(call)
    assert type(error) is errors.NotFoundError
    assert (error.message, error.reason, error.field_violations) == ("gone", "", [])


def test_status_inconsistent_with_the_call_falls_back_to_the_call():
    status = status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT,
        message="other",
        details=packed(error_details_pb2.ErrorInfo(reason="INVALID_FIELD", domain="batchyard.dev")),
    )
    call = FakeCall(grpc.StatusCode.NOT_FOUND, "gone", ((DETAILS_KEY, status.SerializeToString()),))
    error = from_rpc_error(call)
    assert type(error) is errors.NotFoundError
    assert (error.message, error.reason) == ("gone", "")


def test_bare_rpc_error_without_a_call():
    error = from_rpc_error(grpc.RpcError("boom"))
    assert type(error) is errors.BatchyardError
    assert error.code == grpc.StatusCode.UNKNOWN
    assert error.message == "boom"


def test_our_domain_wins_over_another_error_info():
    call = rich_call(
        grpc.StatusCode.NOT_FOUND,
        "gone",
        reason="SOMETHING_ELSE",
        domain="googleapis.com",
        extra=packed(error_details_pb2.ErrorInfo(reason="RUN_NOT_FOUND", domain="batchyard.dev")),
    )
    assert from_rpc_error(call).reason == "RUN_NOT_FOUND"


def test_str_is_the_message_and_repr_names_the_parts():
    error = errors.NotFoundError("definition 'x' not found", grpc.StatusCode.NOT_FOUND, "R")
    assert str(error) == "definition 'x' not found"
    assert "NOT_FOUND" in repr(error)
    assert "'R'" in repr(error)


async def test_a_real_aio_error_from_the_server(definitions):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await definitions.GetDefinition(pb.GetDefinitionRequest(definition="missing"))
    error = from_rpc_error(raised.value)
    assert type(error) is errors.DefinitionNotFoundError
    assert error.reason == "DEFINITION_NOT_FOUND"
    assert "missing" in error.message


async def test_a_real_aio_validation_error_from_the_server(definitions):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await definitions.CreateDefinition(pb.CreateDefinitionRequest())
    error = from_rpc_error(raised.value)
    assert type(error) is errors.InvalidArgumentError
    assert error.reason == "INVALID_FIELD"
    assert ("definition", "required") in error.field_violations
