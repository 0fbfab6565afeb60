"""The (run, attempt, lease id) a worker's call is fenced by, read from the request, plus
the caller's workspace (another workspace's run is as missing)."""

from __future__ import annotations

from uuid import UUID

from batchyard.server.api.auth import current_principal
from batchyard.server.api.run_convert import parse_run_id
from batchyard.server.domain.attempts import Fence
from batchyard.server.domain.errors import FieldViolation, InvalidArgument


def fence_from(run: str, attempt: int, lease_id: str) -> Fence:
    violations = []
    if attempt < 1:
        violations.append(FieldViolation("attempt", "must be 1 or more"))
    try:
        lease = UUID(lease_id)
    except ValueError:
        violations.append(FieldViolation("lease_id", "not a valid lease id"))
    run_id = parse_run_id(run)
    if violations:
        raise InvalidArgument(violations)
    return Fence(run_id, attempt, lease, current_principal().workspace_id)
