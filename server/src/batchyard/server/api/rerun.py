"""Run again: a new run of what an earlier run ran (the console's "Run again", Radix's
restart/copy): its pinned definition version, its configuration with the overrides
applied and its secrets, and its payload."""

from __future__ import annotations

import uuid

from batchyard.server.db import runs as store
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.pool import Pool
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import FieldViolation, InvalidArgument
from batchyard.server.domain.runs import NewRun, validate_payload_and_key
from batchyard.v1 import run_service_pb2 as pb


async def rerun(pool: Pool, box: SecretBox, ws: Workspace, request: pb.SubmitRunRequest) -> NewRun:
    violations = validate_payload_and_key(b"", request.request_id)
    if request.HasField("overrides") or request.payload:
        violations.append(
            FieldViolation("rerun_of", "runs again as it was: leave overrides and payload empty")
        )
    try:
        run_id = uuid.UUID(request.rerun_of)
    except ValueError:
        violations.append(FieldViolation("rerun_of", "not a run uuid"))
    if violations:
        raise InvalidArgument(violations)
    earlier = await store.get(pool, box, ws, run_id)  # RunNotFound, as GetRun says
    payload = await store.payload_of(pool, ws, run_id)
    return NewRun(
        uuid=uuid.uuid4(),
        definition_uuid=earlier.definition_uuid,
        definition_name=earlier.definition_name,
        definition_version=earlier.definition_version,
        config=earlier.config,
        secrets=earlier.secrets,
        payload=payload,
        request_id=request.request_id,
    )
