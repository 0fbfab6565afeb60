"""Typed exceptions for the errors a Batchyard server returns.

The server answers every failed call with a canonical status code and, in the
`grpc-status-details-bin` trailer, a `google.rpc.Status` whose details hold a
`google.rpc.ErrorInfo` (domain "batchyard.dev", `reason` one of `batchyard.v1.ErrorReason`
without its prefix) and, for bad input, a `google.rpc.BadRequest` with one field violation
per bad field. `from_rpc_error` turns such an error back into one of the classes below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from batchyard.v1 import log_pb2, run_pb2

if TYPE_CHECKING:
    from batchyard.v1.run_pb2 import Run

DOMAIN = "batchyard.dev"


class BatchyardError(Exception):
    """A call to the Batchyard server failed.

    Attributes:
        message: what went wrong, as the server (or the gRPC library) put it.
        code: the gRPC status code.
        reason: the `ErrorInfo` reason such as "DEFINITION_NOT_FOUND"; "" if the error
            carried none (e.g. the server could not be reached).
        field_violations: (field path, description) pairs for bad input, the path
            naming the field in the request, e.g. "definition.config.timeout".
    """

    def __init__(
        self,
        message: str,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        field_violations: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.field_violations: list[tuple[str, str]] = list(field_violations or [])

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, code={self.code.name}, "
            f"reason={self.reason!r}, field_violations={self.field_violations!r})"
        )


class InvalidArgumentError(BatchyardError):
    """The request is malformed (INVALID_ARGUMENT); see `field_violations`."""


class NotFoundError(BatchyardError):
    """The named object does not exist (NOT_FOUND)."""


class AlreadyExistsError(BatchyardError):
    """An object with that name already exists (ALREADY_EXISTS)."""


class ConflictError(BatchyardError):
    """The object changed under the caller, e.g. a version conflict (ABORTED)."""


class LeaseLostError(ConflictError):
    """The worker's lease on a run is gone (ABORTED, reason LEASE_LOST): stop the job."""


class FailedPreconditionError(BatchyardError):
    """The object is not in a state that allows the call (FAILED_PRECONDITION)."""


class UnavailableError(BatchyardError):
    """The server cannot be reached or cannot answer now (UNAVAILABLE); retry later."""


class DeadlineExceededError(UnavailableError):
    """The call did not finish before its deadline (DEADLINE_EXCEEDED); retry later."""


class PermissionDeniedError(BatchyardError):
    """The caller's credentials may not make this call (PERMISSION_DENIED)."""


class UnauthenticatedError(BatchyardError):
    """The call carried no valid credentials (UNAUTHENTICATED)."""


class DefinitionNotFoundError(NotFoundError):
    """No definition has that name or uuid (NOT_FOUND, reason DEFINITION_NOT_FOUND)."""


class RunNotFoundError(NotFoundError):
    """No run has that uuid in the caller's workspace (NOT_FOUND, reason RUN_NOT_FOUND)."""


class ResultNotFoundError(NotFoundError):
    """The run has no result of that name (NOT_FOUND, reason RESULT_NOT_FOUND)."""


class DefinitionExistsError(AlreadyExistsError):
    """A definition of that name exists (ALREADY_EXISTS, reason DEFINITION_EXISTS)."""


class QueueNotFoundError(NotFoundError):
    """No queue has that name in the caller's workspace (NOT_FOUND, reason
    QUEUE_NOT_FOUND); for a submission or definition, `field_violations` names the field."""


class QueueExistsError(AlreadyExistsError):
    """A queue of that name exists (ALREADY_EXISTS, reason QUEUE_EXISTS)."""


class VersionConflictError(ConflictError):
    """The definition is no longer at the expected version (ABORTED, reason
    VERSION_CONFLICT): read it again, then update."""


class WrongStateError(FailedPreconditionError):
    """The run's status does not allow the call, e.g. cancelling a finished run or
    deleting a running one (FAILED_PRECONDITION, reason WRONG_STATE)."""


class RunError(BatchyardError):
    """A run that was waited for did not succeed (raised by `Run.wait`).

    Attributes:
        run: the run's final state (a `batchyard.v1.Run` message).
        log_tail: the last lines of its log (warning and above, else any), oldest first.
    """

    def __init__(self, message: str, run: run_pb2.Run, log_tail: Sequence[log_pb2.LogEntry] = ()):
        super().__init__(message, grpc.StatusCode.OK, "")
        self.run = run
        self.log_tail: list[log_pb2.LogEntry] = list(log_tail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, run={self.run.uuid!r})"


class RunFailedError(RunError):
    """The run ended FAILED: `run.reason` says why (non-zero exit code, timeout, worker
    lost, ...), its last attempt has the exit code and message."""


class RunCancelledError(RunError):
    """The run ended CANCELLED."""


class WaitTimeoutError(TimeoutError):
    """`Run.wait` gave up before the run finished; the run itself goes on.

    Attributes:
        run: the last state of the run seen.
    """

    def __init__(self, run: Run, timeout: float) -> None:
        super().__init__(f"run {run.uuid} has not finished after {timeout:g} s")
        self.run = run
        self.timeout = timeout


ERROR_BY_CODE: dict[grpc.StatusCode, type[BatchyardError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}

# Reasons that pick a more specific class than the status code alone.
ERROR_BY_REASON: dict[tuple[grpc.StatusCode, str], type[BatchyardError]] = {
    (grpc.StatusCode.ABORTED, "LEASE_LOST"): LeaseLostError,
    (grpc.StatusCode.ABORTED, "VERSION_CONFLICT"): VersionConflictError,
    (grpc.StatusCode.NOT_FOUND, "DEFINITION_NOT_FOUND"): DefinitionNotFoundError,
    (grpc.StatusCode.NOT_FOUND, "RUN_NOT_FOUND"): RunNotFoundError,
    (grpc.StatusCode.NOT_FOUND, "RESULT_NOT_FOUND"): ResultNotFoundError,
    (grpc.StatusCode.ALREADY_EXISTS, "DEFINITION_EXISTS"): DefinitionExistsError,
    (grpc.StatusCode.FAILED_PRECONDITION, "WRONG_STATE"): WrongStateError,
    (grpc.StatusCode.NOT_FOUND, "QUEUE_NOT_FOUND"): QueueNotFoundError,
    (grpc.StatusCode.ALREADY_EXISTS, "QUEUE_EXISTS"): QueueExistsError,
}


def from_rpc_error(exc: grpc.RpcError) -> BatchyardError:
    """The typed exception for a failed gRPC call (sync or `grpc.aio`).

    Reads the status code and message of the call and, when present, the rich status
    in `grpc-status-details-bin`. Missing, malformed or inconsistent details are
    tolerated: the result then has the call's own code and message, and no reason.
    """
    code = _code_of(exc)
    message = _message_of(exc, code)
    reason = ""
    violations: list[tuple[str, str]] = []
    status = _rich_status(exc)
    if status is not None:
        message = status.message or message
        try:
            reason, violations = _decode_details(status)
        except DecodeError:  # a detail that does not parse: keep code and message
            reason, violations = "", []
    cls = ERROR_BY_REASON.get((code, reason)) or ERROR_BY_CODE.get(code, BatchyardError)
    error = cls(message, code, reason, violations)
    error.__cause__ = exc
    return error


def _code_of(exc: grpc.RpcError) -> grpc.StatusCode:
    try:
        code = exc.code()
    except Exception:  # not a Call: a bare RpcError
        return grpc.StatusCode.UNKNOWN
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _message_of(exc: grpc.RpcError, code: grpc.StatusCode) -> str:
    try:
        details = exc.details()
    except Exception:
        details = None
    if details:
        return str(details)
    return str(exc) or code.name.lower().replace("_", " ")


def _rich_status(exc: grpc.RpcError) -> status_pb2.Status | None:
    """The `google.rpc.Status` of the call, or None if it has none we can read."""
    try:
        status = rpc_status.from_call(cast(grpc.Call, exc))
    except (AttributeError, TypeError, ValueError, DecodeError):
        return None
    return status if isinstance(status, status_pb2.Status) else None


def _decode_details(status: status_pb2.Status) -> tuple[str, list[tuple[str, str]]]:
    """The ErrorInfo reason (ours preferred) and the BadRequest field violations."""
    reasons: list[tuple[str, str]] = []
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reasons.append((info.domain, info.reason))
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                violations += [(v.field, v.description) for v in bad.field_violations]
    ours = [reason for domain, reason in reasons if domain == DOMAIN]
    reason = (ours or [reason for _, reason in reasons] or [""])[0]
    return reason, violations
