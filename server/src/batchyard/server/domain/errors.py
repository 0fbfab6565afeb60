"""Domain errors. The API layer maps each kind to a status code and an ErrorInfo reason."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request and what is wrong with it."""

    field: str
    description: str

    def under(self, prefix: str) -> FieldViolation:
        """The same violation with its path below `prefix` (e.g. "definition")."""
        path = f"{prefix}.{self.field}" if self.field else prefix
        return FieldViolation(path, self.description)


class DomainError(Exception):
    """Base of every error meant for the caller. `reason` is an ErrorReason name. A kind
    with no reason (NotFound, AlreadyExists) cannot be raised: raise a subclass that says
    what (tests/server/test_error_reasons.py checks every reason against the enum)."""

    reason = "INTERNAL"

    def __init__(self, message: str) -> None:
        if not self.reason:
            raise TypeError(f"{type(self).__name__} has no ErrorReason: raise a subclass")
        super().__init__(message)
        self.message = message


@dataclass
class InvalidArgument(DomainError):
    """One or more fields of the request are bad."""

    violations: list[FieldViolation] = field(default_factory=list)
    reason = "INVALID_FIELD"

    def __post_init__(self) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in self.violations[:5])
        more = f" (and {len(self.violations) - 5} more)" if len(self.violations) > 5 else ""
        DomainError.__init__(self, f"invalid request: {summary}{more}")

    def under(self, prefix: str) -> InvalidArgument:
        return InvalidArgument([v.under(prefix) for v in self.violations])


class InvalidPageToken(DomainError):
    reason = "INVALID_PAGE_TOKEN"


class NotFound(DomainError):
    reason = ""


class DefinitionNotFound(NotFound):
    reason = "DEFINITION_NOT_FOUND"

    def __init__(self, ref: str) -> None:
        super().__init__(f"definition {ref!r} not found")


class RunNotFound(NotFound):
    reason = "RUN_NOT_FOUND"

    def __init__(self, ref: str) -> None:
        super().__init__(f"run {ref!r} not found")


class ResultNotFound(NotFound):
    reason = "RESULT_NOT_FOUND"

    def __init__(self, run: str, name: str) -> None:
        super().__init__(f"run {run!r} has no result named {name!r}")


class AlreadyExists(DomainError):
    reason = ""


class DefinitionExists(AlreadyExists):
    reason = "DEFINITION_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"a definition named {name!r} already exists")


class Conflict(DomainError):
    """The object changed under the caller (optimistic concurrency)."""

    reason = "VERSION_CONFLICT"


class WrongState(DomainError):
    """The object is not in a state that allows the call."""

    reason = "WRONG_STATE"


class LeaseLost(DomainError):
    """The worker's lease is gone: it must stop the job (ABORTED)."""

    reason = "LEASE_LOST"


class OutcomeConflict(DomainError):
    """A repeated CompleteRun reports another outcome than the one recorded."""

    reason = "OUTCOME_CONFLICT"


class Unavailable(DomainError):
    """The service cannot answer now; the caller may retry."""

    reason = "SERVER_UNAVAILABLE"


def check(violations: list[FieldViolation]) -> None:
    """Raise InvalidArgument if there is any violation."""
    if violations:
        raise InvalidArgument(violations)


class Unauthenticated(DomainError):
    """No valid credentials: missing, malformed, unknown, revoked or expired token."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """The token is valid but its role may not make this call."""

    reason = "PERMISSION_DENIED"


class SecretsUnreadable(WrongState):
    """Stored secrets cannot be opened: sealed with a key this server does not have (the
    operator must configure it), or altered. The message names the key id only."""


class QueueNotFound(NotFound):
    """The queue does not exist. `field`: the request field that named it, when the
    queue was named by a submission or definition (the error then carries a BadRequest)."""

    reason = "QUEUE_NOT_FOUND"

    def __init__(self, name: str, field: str = "") -> None:
        where = f"{field}: " if field else ""
        super().__init__(f"{where}queue {name!r} does not exist in this workspace")
        self.name = name
        self.field = field


class QueueExists(AlreadyExists):
    reason = "QUEUE_EXISTS"

    def __init__(self, name: str) -> None:
        super().__init__(f"a queue named {name!r} already exists")
