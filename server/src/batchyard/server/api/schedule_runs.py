"""The run a schedule submits: its definition's current version with the schedule's
overrides and payload, prepared and validated as SubmitRun does it."""

from __future__ import annotations

from batchyard.server.api.runs import ShapeCache, _Submissions
from batchyard.server.db.definition_reader import DefinitionReader
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.runs import NewRun
from batchyard.server.domain.schedules import Schedule
from batchyard.server.domain.sql_targets import DatabaseIdentity
from batchyard.v1 import run_pb2
from batchyard.v1 import run_service_pb2 as rpb


class ScheduledRuns:
    def __init__(self, reader: DefinitionReader, service: DatabaseIdentity | None) -> None:
        self._reader = reader
        self._service = service
        self._shapes = ShapeCache(256)

    async def prepare(self, s: Schedule) -> NewRun:
        """The run to submit now; DefinitionNotFound or InvalidArgument (paths relative to
        a SubmitRunRequest) when there is none to submit."""
        overrides = run_pb2.RunOverrides.FromString(s.overrides)
        overrides.secret_env.update(s.secrets.env)
        request = rpb.SubmitRunRequest(
            definition=s.definition, overrides=overrides, payload=s.payload
        )
        ws = Workspace(s.workspace_id, s.workspace)
        return await _Submissions(self._reader, ws, self._shapes, self._service).new_run(request)
