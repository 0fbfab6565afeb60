"""`client.schedules` and `client.retention` of the asyncio face: the synchronous
face's (`batchyard.client.sync.schedules`), awaited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from batchyard.client.aio.call import AsyncCaller
from batchyard.client.aio.paging import AsyncPaged, alisting
from batchyard.client.core.part import Part
from batchyard.client.core.requests import (
    Payload,
    StatusFilter,
    delete_runs_request,
    list_schedules,
    retention_policy,
    schedule_spec,
)
from batchyard.v1 import retention_service_pb2 as retpb
from batchyard.v1 import (
    retention_service_pb2_grpc,  # noqa: F401 (its Async stubs, quoted above: typing only)
    run_pb2,
    schedule_pb2,
    schedule_service_pb2_grpc,  # noqa: F401
)
from batchyard.v1 import schedule_service_pb2 as spb


class AsyncSchedules(Part["schedule_service_pb2_grpc.ScheduleServiceAsyncStub", AsyncCaller]):
    """`client.schedules`: definitions run on a timetable (cron in a time zone, or an
    interval), each fire time submitting at most one run."""

    async def create(
        self,
        definition: str,
        *,
        cron: str | None = None,
        interval: float | None = None,
        time_zone: str = "",
        overlap: str = "skip",
        max_concurrent_runs: int = 0,
        catchup_window: float | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        note: str = "",
        args: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        payload: Payload = None,
    ) -> schedule_pb2.Schedule:
        """A new schedule of `definition` (name or uuid): `cron` ("30 2 * * *",
        "@daily") read in `time_zone` (IANA, default UTC), or `interval` seconds;
        `overlap` is skip, buffer-one, allow (up to `max_concurrent_runs`) or
        cancel-other; `catchup_window` in seconds (default 600)."""
        spec, _ = schedule_spec(
            definition,
            cron=cron,
            interval=interval,
            time_zone=time_zone,
            overlap=overlap,
            max_concurrent_runs=max_concurrent_runs,
            catchup_window=catchup_window,
            start_time=start_time,
            end_time=end_time,
            note=note,
            args=args,
            env=env,
            payload=payload,
        )
        request = spb.CreateScheduleRequest(schedule=spec)
        return (await self._call(self._stub.CreateSchedule, request)).schedule

    async def get(self, schedule: str) -> schedule_pb2.Schedule:
        """The schedule with its next 5 fire times and its latest fires."""
        return (
            await self._call(self._stub.GetSchedule, spb.GetScheduleRequest(schedule=schedule))
        ).schedule

    def list(
        self, *, definition: str = "", limit: int | None = None, page_size: int = 0
    ) -> AsyncPaged[schedule_pb2.Schedule]:
        """The schedules, newest first; only those of `definition` when given."""
        return alisting(
            self._call,
            self._stub.ListSchedules,
            list_schedules(definition),
            limit=limit,
            page_size=page_size,
        )

    async def update(self, schedule: str, **changes: object) -> schedule_pb2.Schedule:
        """Change the fields given (the keywords of `create`); the timetable restarts now."""
        spec, mask = schedule_spec(**changes)  # type: ignore[arg-type]
        request = spb.UpdateScheduleRequest(schedule=schedule, values=spec)
        request.update_mask.paths.extend(mask)
        return (await self._call(self._stub.UpdateSchedule, request)).schedule

    async def delete(self, schedule: str) -> None:
        """Delete the schedule (its runs stay)."""
        await self._call(self._stub.DeleteSchedule, spb.DeleteScheduleRequest(schedule=schedule))

    async def pause(self, schedule: str) -> schedule_pb2.Schedule:
        """No fire until resumed; runs already submitted are not touched."""
        request = spb.PauseScheduleRequest(schedule=schedule)
        return (await self._call(self._stub.PauseSchedule, request)).schedule

    async def resume(self, schedule: str) -> schedule_pb2.Schedule:
        """Fire again from the next fire time (the times while paused are not fired)."""
        request = spb.ResumeScheduleRequest(schedule=schedule)
        return (await self._call(self._stub.ResumeSchedule, request)).schedule

    async def trigger(self, schedule: str) -> run_pb2.Run:
        """Submit a run of the schedule now (also when paused)."""
        request = spb.TriggerScheduleRequest(schedule=schedule)
        return (await self._call(self._stub.TriggerSchedule, request)).run


class AsyncRetention(Part["retention_service_pb2_grpc.RetentionServiceAsyncStub", AsyncCaller]):
    """`client.retention`: how long finished runs are kept, and bulk deletion."""

    async def get_policy(self, definition: str = "") -> retpb.GetRetentionPolicyResponse:
        """The workspace's policy (and a definition's override and effective policy)."""
        request = retpb.GetRetentionPolicyRequest(definition=definition)
        return await self._call(self._stub.GetRetentionPolicy, request)

    async def set_policy(
        self,
        *,
        definition: str = "",
        keep_for: float | None = None,
        keep_succeeded: int | None = None,
        keep_failed: int | None = None,
        audit_keep_for: float | None = None,
    ) -> retpb.RetentionPolicy:
        """Set the workspace's policy (or `definition`'s override); periods in seconds;
        None leaves a rule unset (admin tokens)."""
        policy = retention_policy(keep_for, keep_succeeded, keep_failed, audit_keep_for)
        request = retpb.SetRetentionPolicyRequest(definition=definition, policy=policy)
        return (await self._call(self._stub.SetRetentionPolicy, request)).policy

    async def delete_runs(
        self,
        *,
        status: StatusFilter = None,
        definition: str = "",
        schedule: str = "",
        older_than: float | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete the finished runs matching every filter given (never unfinished ones);
        `older_than` in seconds since they ended. Returns how many (with `dry_run`: how
        many would be)."""
        request = delete_runs_request(status, definition, schedule, older_than, dry_run)
        return (await self._call(self._stub.DeleteRuns, request)).count
