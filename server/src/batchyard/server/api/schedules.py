"""ScheduleService: create, read, list, update, delete, pause, resume and trigger."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import grpc

from batchyard.server.api.audit import AuditLog
from batchyard.server.api.auth import current_principal
from batchyard.server.api.run_convert import run_to_pb
from batchyard.server.api.schedule_convert import (
    apply_mask,
    parse_schedule_id,
    schedule_from_pb,
    schedule_to_pb,
)
from batchyard.server.api.schedule_runs import ScheduledRuns
from batchyard.server.api.workspaces import WorkspaceResolver
from batchyard.server.db import runs as run_store
from batchyard.server.db import schedule_fires as fires
from batchyard.server.db import schedules as store
from batchyard.server.db.job_codec import SecretBox
from batchyard.server.db.pool import Pool
from batchyard.server.db.wakeups import Wakeups
from batchyard.server.domain import paging
from batchyard.server.domain.access import Workspace
from batchyard.server.domain.errors import InvalidArgument
from batchyard.server.domain.schedules import Schedule
from batchyard.v1 import schedule_service_pb2 as pb
from batchyard.v1 import schedule_service_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
SCHEDULES_KEY = "@schedules"
"""The scheduler's wake-up key (maintenance/scheduler.py)."""


class ScheduleServicer(schedule_service_pb2_grpc.ScheduleServiceServicer):
    def __init__(
        self,
        pool: Pool,
        box: SecretBox,
        workspaces: WorkspaceResolver,
        wakeups: Wakeups,
        runs: ScheduledRuns,
        audit: AuditLog,
    ) -> None:
        self._pool = pool
        self._box = box
        self._workspaces = workspaces
        self._wakeups = wakeups
        self._runs = runs
        self._audit = audit

    async def _view(self, s: Schedule) -> Any:
        return schedule_to_pb(s, await store.recent_fires(self._pool, s.uuid))

    async def _check_runnable(self, s: Schedule, prefix: str) -> None:
        """A schedule whose run could not be submitted now is refused (its definition
        is missing, or the overrides do not fit it)."""
        try:
            await self._runs.prepare(s)
        except InvalidArgument as exc:
            raise exc.under(prefix) from None

    def _changed(self, action: str, s: Schedule, detail: str = "") -> None:
        self._wakeups.poke([SCHEDULES_KEY])
        self._audit.record(current_principal(), action, "schedule", s.uuid, detail)

    async def CreateSchedule(
        self, request: pb.CreateScheduleRequest, context: Context
    ) -> pb.CreateScheduleResponse:
        ws = await self._workspaces.of(context)
        now = await store.database_now(self._pool)
        try:
            s = schedule_from_pb(request.schedule, ws, now)
        except InvalidArgument as exc:
            raise exc.under("schedule") from None
        await self._check_runnable(s, "schedule")
        await store.create(self._pool, self._box, s)
        self._changed("schedule.create", s, s.definition)
        return pb.CreateScheduleResponse(schedule=await self._view(s))

    async def _get(self, ws: Workspace, ref: str) -> Schedule:
        return await store.get(self._pool, self._box, ws, parse_schedule_id(ref))

    async def GetSchedule(
        self, request: pb.GetScheduleRequest, context: Context
    ) -> pb.GetScheduleResponse:
        ws = await self._workspaces.of(context)
        return pb.GetScheduleResponse(
            schedule=await self._view(await self._get(ws, request.schedule))
        )

    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: Context
    ) -> pb.ListSchedulesResponse:
        ws = await self._workspaces.of(context)
        size = paging.page_size(request.page_size)
        fingerprint = {"d": request.definition}
        key = paging.decode(request.page_token, fingerprint)
        after = (datetime.fromisoformat(str(key[0])), UUID(str(key[1]))) if key else None
        page = await store.list_page(
            self._pool, self._box, ws, request.definition or None, after, size + 1
        )
        token = ""
        if len(page) > size:
            page = page[:size]
            token = paging.encode(
                [page[-1].created_at.isoformat(), str(page[-1].uuid)], fingerprint
            )
        return pb.ListSchedulesResponse(
            schedules=[await self._view(s) for s in page], next_page_token=token
        )

    async def UpdateSchedule(
        self, request: pb.UpdateScheduleRequest, context: Context
    ) -> pb.UpdateScheduleResponse:
        ws = await self._workspaces.of(context)
        current = await self._get(ws, request.schedule)
        merged = apply_mask(
            schedule_to_pb(current, [], full=True), request.values, list(request.update_mask.paths)
        )
        now = await store.database_now(self._pool)
        try:
            s = schedule_from_pb(merged, ws, now, keep=current)
        except InvalidArgument as exc:
            raise exc.under("values") from None
        await self._check_runnable(s, "values")
        await store.replace(self._pool, self._box, s)
        self._changed("schedule.update", s, ", ".join(request.update_mask.paths))
        return pb.UpdateScheduleResponse(
            schedule=await self._view(await self._get(ws, str(s.uuid)))
        )

    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: Context
    ) -> pb.DeleteScheduleResponse:
        ws = await self._workspaces.of(context)
        s = await self._get(ws, request.schedule)
        await store.delete(self._pool, ws, s.uuid)
        self._changed("schedule.delete", s)
        return pb.DeleteScheduleResponse()

    async def _set_paused(self, ws: Workspace, ref: str, paused: bool) -> Any:
        s = await self._get(ws, ref)
        now = await store.database_now(self._pool)
        cursor = s.next_fire_at  # resuming: the times that passed while paused are not fired
        if cursor is None or cursor <= now:
            cursor = s.timetable.next_after(now)
        await store.set_paused(self._pool, ws, s.uuid, paused, cursor)
        self._changed("schedule.pause" if paused else "schedule.resume", s)
        return await self._view(await self._get(ws, ref))

    async def PauseSchedule(
        self, request: pb.PauseScheduleRequest, context: Context
    ) -> pb.PauseScheduleResponse:
        ws = await self._workspaces.of(context)
        return pb.PauseScheduleResponse(schedule=await self._set_paused(ws, request.schedule, True))

    async def ResumeSchedule(
        self, request: pb.ResumeScheduleRequest, context: Context
    ) -> pb.ResumeScheduleResponse:
        ws = await self._workspaces.of(context)
        schedule = await self._set_paused(ws, request.schedule, False)
        return pb.ResumeScheduleResponse(schedule=schedule)

    async def TriggerSchedule(
        self, request: pb.TriggerScheduleRequest, context: Context
    ) -> pb.TriggerScheduleResponse:
        ws = await self._workspaces.of(context)
        schedule_id = parse_schedule_id(request.schedule)
        now = await store.database_now(self._pool)
        run = await fires.trigger(self._pool, self._box, ws, schedule_id, now, self._runs.prepare)
        self._wakeups.poke([run.config.queue])
        self._audit.record(current_principal(), "schedule.trigger", "schedule", schedule_id)
        stored = await run_store.get(self._pool, self._box, ws, run.uuid)
        return pb.TriggerScheduleResponse(run=run_to_pb(stored))
